"""Alembic environment: always run in code by ``PriceStore.migrate`` with a connection passed in.

No ``fileConfig`` here: the application owns logging, and a migration must not reconfigure it.
"""

from __future__ import annotations

from alembic import context

from btcmlops.store.schema import VERSION_TABLE, metadata

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=True,  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()
