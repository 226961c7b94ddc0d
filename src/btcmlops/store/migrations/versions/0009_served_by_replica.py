"""Each inference replica says what it serves: the clock waits until every live replica serves the champion.

The old one-row-per-model ``serving_status`` let replicas overwrite each other (the first to swap
released the clock while the others still served the old champion). Its rows are rewritten every few
seconds by the services, so nothing is carried over.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.drop_table("serving_status")
    op.create_table(
        "serving_status",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("replica", sa.String(128), primary_key=True),
        sa.Column("served_version", sa.Integer(), nullable=True),
        sa.Column("updated_at", TIME, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("serving_status")
    op.create_table(
        "serving_status",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("served_version", sa.Integer(), nullable=True),
        sa.Column("updated_at", TIME, nullable=False),
    )
