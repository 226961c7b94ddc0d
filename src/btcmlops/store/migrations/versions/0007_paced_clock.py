"""A paced clock waits for every hour's forecast as well as for the contest.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    with op.batch_alter_table("sim_clock") as batch:
        batch.add_column(sa.Column("paced", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("forecast_due", TIME, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sim_clock") as batch:
        batch.drop_column("forecast_due")
        batch.drop_column("paced")
