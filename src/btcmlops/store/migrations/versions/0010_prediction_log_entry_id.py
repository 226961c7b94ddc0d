"""Each logged forecast carries the id its service gave it, unique: a replayed write-ahead log inserts once.

The inference service keeps every answered forecast in a local write-ahead file until the store has it;
after a crash it replays that file, perhaps with rows the store committed just before the crash. The
unique ``entry_id`` turns those into no-ops. Rows logged before this revision keep NULL (a unique key
allows any number of NULLs on SQLite and MariaDB alike).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("prediction_log") as batch:  # SQLite adds a constraint by copying the table
        batch.add_column(sa.Column("entry_id", sa.String(32), nullable=True))
        batch.create_unique_constraint("uq_prediction_log_entry_id", ["entry_id"])


def downgrade() -> None:
    with op.batch_alter_table("prediction_log") as batch:
        batch.drop_constraint("uq_prediction_log_entry_id", type_="unique")
        batch.drop_column("entry_id")
