"""The sim clock row every service derives sim time from.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "sim_clock",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("sim_anchor", TIME, nullable=False, comment="sim time at the anchor, naive UTC"),
        sa.Column("real_anchor", TIME, nullable=False, comment="real time of the anchor, naive UTC"),
        sa.Column("speed", sa.Float(precision=53), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sim_clock")
