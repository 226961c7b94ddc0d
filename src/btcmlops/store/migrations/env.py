"""Alembic environment: always run in code by ``PriceStore.migrate`` with a connection passed in."""

from __future__ import annotations

from alembic import context

from btcmlops.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
