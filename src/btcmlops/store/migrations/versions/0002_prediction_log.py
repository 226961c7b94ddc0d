"""Prediction log: every forecast the inference service served, to score each version live.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
"""Naive UTC with microseconds (plain DATETIME on MySQL drops or rounds them)."""


def upgrade() -> None:
    op.create_table(
        "prediction_log",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("timestamp", TIME, nullable=False, comment="hour T the forecast was made from"),
        sa.Column("target_time", TIME, nullable=False, comment="hour T + 1h whose close it forecasts"),
        sa.Column("predicted_close", sa.Float(precision=53), nullable=False),
        sa.Column("last_close", sa.Float(precision=53), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("served_at", TIME, nullable=False),
    )
    op.create_index("ix_prediction_log_target_time", "prediction_log", ["target_time"])


def downgrade() -> None:
    op.drop_index("ix_prediction_log_target_time", table_name="prediction_log")
    op.drop_table("prediction_log")
