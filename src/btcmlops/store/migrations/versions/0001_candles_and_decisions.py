"""Candles and contest decisions.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
"""Naive UTC with microseconds (plain DATETIME on MySQL drops or rounds them)."""

DOUBLE = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "candles",
        sa.Column("open_time", TIME, primary_key=True, comment="open of the hour, naive UTC"),
        sa.Column("open", DOUBLE, nullable=False),
        sa.Column("high", DOUBLE, nullable=False),
        sa.Column("low", DOUBLE, nullable=False),
        sa.Column("close", DOUBLE, nullable=False),
        sa.Column("volume", DOUBLE, nullable=False),
    )
    op.create_table(
        "contest_decisions",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("registered_model", sa.String(255), nullable=False),
        sa.Column("eval_start", TIME, nullable=False, comment="first target hour of the shadow month"),
        sa.Column("eval_end", TIME, nullable=False, comment="last target hour of the shadow month"),
        sa.Column("champion_version", sa.Integer(), nullable=False),
        sa.Column("challenger_version", sa.Integer(), nullable=False),
        sa.Column("champion_mae", DOUBLE, nullable=False),
        sa.Column("challenger_mae", DOUBLE, nullable=False),
        sa.Column("naive_mae", DOUBLE, nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("promoted", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_at", TIME, nullable=False),
        sa.UniqueConstraint("registered_model", "eval_start", name="uq_decision_model_month"),
    )


def downgrade() -> None:
    op.drop_table("contest_decisions")
    op.drop_table("candles")
