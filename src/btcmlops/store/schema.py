"""Table definitions (SQLAlchemy Core). Migrations create them; code reads and writes through these."""

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

metadata = MetaData()

candles = Table(
    "candles",
    metadata,
    Column("open_time", DateTime, primary_key=True, comment="open of the hour, naive UTC"),
    Column("open", Float(precision=53), nullable=False),
    Column("high", Float(precision=53), nullable=False),
    Column("low", Float(precision=53), nullable=False),
    Column("close", Float(precision=53), nullable=False),
    Column("volume", Float(precision=53), nullable=False),
)

contest_decisions = Table(
    "contest_decisions",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("registered_model", String(255), nullable=False),
    Column("eval_start", DateTime, nullable=False, comment="first target hour of the shadow month"),
    Column("eval_end", DateTime, nullable=False, comment="last target hour of the shadow month"),
    Column("champion_version", Integer, nullable=False),
    Column("challenger_version", Integer, nullable=False),
    Column("champion_mae", Float(precision=53), nullable=False),
    Column("challenger_mae", Float(precision=53), nullable=False),
    Column("naive_mae", Float(precision=53), nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("promoted", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("decided_at", DateTime, nullable=False),
    UniqueConstraint("registered_model", "eval_start", name="uq_decision_model_month"),
)

prediction_log = Table(
    "prediction_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("timestamp", DateTime, nullable=False, comment="hour T the forecast was made from"),
    Column("target_time", DateTime, nullable=False, index=True, comment="hour T + 1h it forecasts"),
    Column("predicted_close", Float(precision=53), nullable=False),
    Column("last_close", Float(precision=53), nullable=False),
    Column("model_version", Integer, nullable=False),
    Column("served_at", DateTime, nullable=False),
)
