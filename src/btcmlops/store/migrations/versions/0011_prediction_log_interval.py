"""Each logged forecast keeps the central interval served with it: its level, lower and upper close.

Every version now carries a calibrated interval, and ``/predict`` answers it with the point forecast;
the log keeps it so that live coverage and interval score can be read back per version. Rows logged
before this revision keep NULL (no interval was served with them).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("interval_level", "level of the served interval"),
    ("lower_close", "the interval's lower close"),
    ("upper_close", "the interval's upper close"),
)


def upgrade() -> None:
    with op.batch_alter_table("prediction_log") as batch:
        for name, comment in _COLUMNS:
            batch.add_column(sa.Column(name, sa.Float(precision=53), nullable=True, comment=comment))


def downgrade() -> None:
    with op.batch_alter_table("prediction_log") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
