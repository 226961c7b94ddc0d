"""Each candle says when it was written, so a service sees late and corrected candles.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    with op.batch_alter_table("candles") as batch:
        batch.add_column(sa.Column("written_at", TIME, nullable=True))
        batch.create_index("ix_candles_written_at", ["written_at"])


def downgrade() -> None:
    with op.batch_alter_table("candles") as batch:
        batch.drop_index("ix_candles_written_at")
        batch.drop_column("written_at")
