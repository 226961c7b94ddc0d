"""Microsecond times on MySQL/MariaDB, so every time reads back as written (SQLite already does).

A plain DATETIME keeps whole seconds: MariaDB drops the fraction and MySQL rounds it, which can move a
``decided_at`` or ``served_at`` into the next second (or day). One ALTER per table, so each is rebuilt
once; the comments are restated because MODIFY replaces the whole column definition.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# table -> (column, comment or None), every DATETIME column of the schema (all NOT NULL).
_TIMES: dict[str, list[tuple[str, str | None]]] = {
    "candles": [("open_time", "open of the hour, naive UTC")],
    "contest_decisions": [
        ("eval_start", "first target hour of the shadow month"),
        ("eval_end", "last target hour of the shadow month"),
        ("decided_at", None),
    ],
    "prediction_log": [
        ("timestamp", "hour T the forecast was made from"),
        ("target_time", "hour T + 1h whose close it forecasts"),
        ("served_at", None),
    ],
}


def _alter(column_type: str) -> None:
    if op.get_bind().dialect.name not in ("mysql", "mariadb"):
        return  # SQLite keeps times as text with microseconds already
    for table, columns in _TIMES.items():
        clauses = ", ".join(
            f"MODIFY `{column}` {column_type} NOT NULL" + (f" COMMENT '{comment}'" if comment else "")
            for column, comment in columns
        )
        op.execute(f"ALTER TABLE `{table}` {clauses}")


def upgrade() -> None:
    _alter("DATETIME(6)")


def downgrade() -> None:
    _alter("DATETIME")
