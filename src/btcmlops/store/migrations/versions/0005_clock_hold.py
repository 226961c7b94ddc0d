"""The clock holds for the contest and ends with the data; the service says what it serves.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    with op.batch_alter_table("sim_clock") as batch:
        batch.add_column(sa.Column("hold_at", TIME, nullable=True))
        batch.add_column(sa.Column("hold_reason", sa.String(255), nullable=False, server_default=""))
        batch.add_column(sa.Column("end_at", TIME, nullable=True))
    op.create_table(
        "serving_status",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("served_version", sa.Integer(), nullable=True),
        sa.Column("updated_at", TIME, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("serving_status")
    with op.batch_alter_table("sim_clock") as batch:
        batch.drop_column("end_at")
        batch.drop_column("hold_reason")
        batch.drop_column("hold_at")
