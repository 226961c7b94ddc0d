"""Table definitions (SQLAlchemy Core). Migrations create them; code reads and writes through these.

Times are stored as naive UTC (MySQL's DATETIME has no zone) with microseconds on every backend, so a
time reads back exactly as it was written, on SQLite and on MySQL/MariaDB alike.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.sql.expression import false

VERSION_TABLE = "btcmlops_alembic_version"
"""Alembic's bookkeeping table, named apart from ``alembic_version`` so the store can share a database
with another Alembic user (MLflow's tracking store keeps its own revision in ``alembic_version``)."""

UtcDateTime = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
"""Naive UTC with microseconds; plain DATETIME on MySQL would drop (MariaDB) or round (MySQL) them."""

metadata = MetaData()

candles = Table(
    "candles",
    metadata,
    Column("open_time", UtcDateTime, primary_key=True, comment="open of the hour, naive UTC"),
    Column("open", Float(precision=53), nullable=False),
    Column("high", Float(precision=53), nullable=False),
    Column("low", Float(precision=53), nullable=False),
    Column("close", Float(precision=53), nullable=False),
    Column("volume", Float(precision=53), nullable=False),
    Column("written_at", UtcDateTime, nullable=True, index=True, comment="real time of the last write"),
)

contest_decisions = Table(
    "contest_decisions",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("registered_model", String(255), nullable=False),
    Column("eval_start", UtcDateTime, nullable=False, comment="first target hour of the shadow month"),
    Column("eval_end", UtcDateTime, nullable=False, comment="last target hour of the shadow month"),
    Column("champion_version", Integer, nullable=False),
    Column("challenger_version", Integer, nullable=False),
    Column("champion_mae", Float(precision=53), nullable=False),
    Column("challenger_mae", Float(precision=53), nullable=False),
    Column("naive_mae", Float(precision=53), nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("promoted", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("decided_at", UtcDateTime, nullable=False),
    UniqueConstraint("registered_model", "eval_start", name="uq_decision_model_month"),
)

prediction_log = Table(
    "prediction_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("timestamp", UtcDateTime, nullable=False, comment="hour T the forecast was made from"),
    Column("target_time", UtcDateTime, nullable=False, index=True, comment="hour T + 1h it forecasts"),
    Column("predicted_close", Float(precision=53), nullable=False),
    Column("last_close", Float(precision=53), nullable=False),
    Column("model_version", Integer, nullable=False),
    Column("served_at", UtcDateTime, nullable=False),
    Column("sim_made_at", UtcDateTime, nullable=True, comment="sim time the forecast was made at"),
    Column(
        "entry_id",
        String(32),
        nullable=True,
        comment="the serving replica's id of the entry: a replayed write-ahead log inserts it once",
    ),
    Column("interval_level", Float(precision=53), nullable=True, comment="level of the served interval"),
    Column("lower_close", Float(precision=53), nullable=True, comment="the interval's lower close"),
    Column("upper_close", Float(precision=53), nullable=True, comment="the interval's upper close"),
    UniqueConstraint("entry_id", name="uq_prediction_log_entry_id"),
)

sim_clock = Table(
    "sim_clock",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("sim_anchor", UtcDateTime, nullable=False, comment="sim time at the anchor, naive UTC"),
    Column("real_anchor", UtcDateTime, nullable=False, comment="real time of the anchor, naive UTC"),
    Column("speed", Float(precision=53), nullable=False),
    Column("paused", Boolean, nullable=False),
    Column("hold_at", UtcDateTime, nullable=True, comment="sim time the clock may not pass (naive UTC)"),
    Column("hold_reason", String(255), nullable=False, server_default=""),
    Column("end_at", UtcDateTime, nullable=True, comment="the close of the data's last hour (naive UTC)"),
    Column("paced", Boolean, nullable=False, server_default=false(), comment="waits for every forecast"),
    Column("forecast_due", UtcDateTime, nullable=True, comment="oldest hour without its forecast yet"),
)

serving_status = Table(
    "serving_status",
    metadata,
    Column("name", String(64), primary_key=True, comment="the registered model served"),
    Column("replica", String(128), primary_key=True, comment="the inference service process (host:pid)"),
    Column("served_version", Integer, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
)

registry_journal = Table(
    "registry_journal",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("registered_model", String(255), nullable=False),
    Column("kind", String(32), nullable=False, comment="month_close, promote, rollback, external"),
    Column("month", String(7), nullable=True, comment="the month a month_close closes (YYYY-MM)"),
    Column("state", String(16), nullable=False, comment="pending until every step is done, then done"),
    Column(
        "pending_slot",
        Integer,
        nullable=True,
        comment="1 while pending, NULL when done: the unique key allows one change in flight per model",
    ),
    Column("plan", JSON, nullable=False, comment="every step's input, written before the first step"),
    Column("actor", String(255), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    UniqueConstraint("registered_model", "month", name="uq_journal_model_month"),
    UniqueConstraint("registered_model", "pending_slot", name="uq_journal_one_pending"),
)

champion_audit = Table(
    "champion_audit",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("registered_model", String(255), nullable=False),
    Column("changed_at", UtcDateTime, nullable=False, comment="real time of the change"),
    Column("sim_time", UtcDateTime, nullable=True, comment="sim time from which the new champion serves"),
    Column("actor", String(255), nullable=False, comment="key name, OS user, or who moved the alias"),
    Column("from_version", Integer, nullable=True),
    Column("to_version", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("source", String(16), nullable=False, comment="contest, manual or external"),
    Column("change_id", BigInteger, nullable=True, comment="the registry_journal row that made it"),
)

trainer_lease = Table(
    "trainer_lease",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(255), nullable=False, comment="host:pid of the trainer holding it"),
    Column("acquired_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)
