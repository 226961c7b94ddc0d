"""Registry journal (intent first, then steps), the append-only champion audit, the trainer lease.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "registry_journal",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("registered_model", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("month", sa.String(7), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("pending_slot", sa.Integer(), nullable=True),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("finished_at", TIME, nullable=True),
        sa.UniqueConstraint("registered_model", "month", name="uq_journal_model_month"),
        sa.UniqueConstraint("registered_model", "pending_slot", name="uq_journal_one_pending"),
    )
    op.create_table(
        "champion_audit",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("registered_model", sa.String(255), nullable=False),
        sa.Column("changed_at", TIME, nullable=False),
        sa.Column("sim_time", TIME, nullable=True),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=True),
        sa.Column("to_version", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("change_id", sa.BigInteger(), nullable=True),
    )
    op.create_table(
        "trainer_lease",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("acquired_at", TIME, nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("trainer_lease")
    op.drop_table("champion_audit")
    op.drop_table("registry_journal")
