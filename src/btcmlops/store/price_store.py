"""``PriceStore``: the SQL side of btcmlops, the same code on SQLite and MySQL/MariaDB."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, bindparam, create_engine, func, select, text
from sqlalchemy.engine import make_url

from btcmlops.store.schema import candles as candles_table
from btcmlops.store.schema import contest_decisions, prediction_log

CANDLE_VALUES = ("open", "high", "low", "close", "volume")
_MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@dataclass(frozen=True)
class UpsertReport:
    """What an upsert changed: loading the same candles twice reports only ``unchanged``."""

    inserted: int
    updated: int
    unchanged: int


@dataclass(frozen=True)
class LoggedPrediction:
    """One served forecast (times tz-aware UTC)."""

    timestamp: datetime
    target_time: datetime
    predicted_close: float
    last_close: float
    model_version: int
    served_at: datetime


@dataclass(frozen=True)
class DecisionRow:
    """One contest decision as the store keeps it (times tz-aware UTC)."""

    registered_model: str
    eval_start: datetime
    eval_end: datetime
    champion_version: int
    challenger_version: int
    champion_mae: float
    challenger_mae: float
    naive_mae: float
    metrics: dict[str, Any]
    promoted: bool
    reason: str
    decided_at: datetime


def _naive_utc(moment: datetime | pd.Timestamp) -> datetime:
    """Databases keep naive UTC (MySQL DATETIME has no zone); refuse a naive input to stay honest."""
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is None:
        raise ValueError(f"timestamp {moment!r} has no time zone; pass UTC-aware times")
    converted: datetime = stamp.tz_convert(UTC).tz_localize(None).to_pydatetime()
    return converted


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC)


class PriceStore:
    """Candles and contest decisions behind one SQLAlchemy URL."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        self._engine: Engine = create_engine(url, pool_pre_ping=True)

    def migrate(self) -> None:
        """Bring the schema to the newest migration; harmless on an up-to-date database."""
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with self._engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def dispose(self) -> None:
        self._engine.dispose()

    def ping(self) -> None:
        """Raise if the database does not answer."""
        with self._engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    # -- candles --------------------------------------------------------------------------------------
    def upsert_candles(self, candles: pd.DataFrame) -> UpsertReport:
        """Insert new candles and update changed ones, in one transaction (all or nothing)."""
        if candles.empty:
            return UpsertReport(0, 0, 0)
        times = [_naive_utc(moment) for moment in candles["open_time"]]
        values = candles.loc[:, list(CANDLE_VALUES)].to_numpy(dtype=float).tolist()
        incoming = {time: tuple(row) for time, row in zip(times, values, strict=True)}
        with self._engine.begin() as connection:
            query = select(candles_table).where(
                candles_table.c.open_time >= min(times), candles_table.c.open_time <= max(times)
            )
            existing = {
                row.open_time: tuple(float(getattr(row, name)) for name in CANDLE_VALUES)
                for row in connection.execute(query)
            }
            new = [
                {"open_time": time, **dict(zip(CANDLE_VALUES, row, strict=True))}
                for time, row in incoming.items()
                if time not in existing
            ]
            changed = [
                {"key": time, **dict(zip(CANDLE_VALUES, row, strict=True))}
                for time, row in incoming.items()
                if time in existing and existing[time] != row
            ]
            if new:
                connection.execute(candles_table.insert(), new)
            if changed:
                update = (
                    candles_table.update()
                    .where(candles_table.c.open_time == bindparam("key"))
                    .values({name: bindparam(name) for name in CANDLE_VALUES})
                )
                connection.execute(update, changed)
        return UpsertReport(len(new), len(changed), len(incoming) - len(new) - len(changed))

    def read_candles(self, start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame:
        """Candles with ``start <= open_time <= end`` (either bound optional), oldest first."""
        query = select(candles_table).order_by(candles_table.c.open_time)
        if start is not None:
            query = query.where(candles_table.c.open_time >= _naive_utc(start))
        if end is not None:
            query = query.where(candles_table.c.open_time <= _naive_utc(end))
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        frame = pd.DataFrame(rows, columns=["open_time", *CANDLE_VALUES])
        frame["open_time"] = (
            pd.to_datetime(frame["open_time"]).dt.tz_localize(UTC).astype("datetime64[ns, UTC]")
        )
        return frame.astype(dict.fromkeys(CANDLE_VALUES, "float64"))

    def candle_count(self) -> int:
        with self._engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(candles_table)).scalar_one())

    # -- decisions ------------------------------------------------------------------------------------
    def record_decision(self, row: DecisionRow) -> None:
        """Record a decision once per (registered model, shadow month); a repeat must agree with it."""
        for recorded in self.list_decisions(row.registered_model):
            if recorded.eval_start == row.eval_start:
                if (recorded.champion_version, recorded.challenger_version, recorded.promoted) != (
                    row.champion_version,
                    row.challenger_version,
                    row.promoted,
                ):
                    raise ValueError(
                        f"a different decision is already recorded for {row.registered_model} "
                        f"from {row.eval_start}: {recorded}"
                    )
                return
        with self._engine.begin() as connection:
            connection.execute(
                contest_decisions.insert(),
                {
                    "registered_model": row.registered_model,
                    "eval_start": _naive_utc(row.eval_start),
                    "eval_end": _naive_utc(row.eval_end),
                    "champion_version": row.champion_version,
                    "challenger_version": row.challenger_version,
                    "champion_mae": row.champion_mae,
                    "challenger_mae": row.challenger_mae,
                    "naive_mae": row.naive_mae,
                    "metrics": row.metrics,
                    "promoted": row.promoted,
                    "reason": row.reason,
                    "decided_at": _naive_utc(row.decided_at),
                },
            )

    def list_decisions(self, registered_model: str | None = None) -> list[DecisionRow]:
        """Recorded decisions, oldest shadow month first."""
        query = select(contest_decisions).order_by(contest_decisions.c.eval_start)
        if registered_model is not None:
            query = query.where(contest_decisions.c.registered_model == registered_model)
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            DecisionRow(
                registered_model=row.registered_model,
                eval_start=_aware(row.eval_start),
                eval_end=_aware(row.eval_end),
                champion_version=row.champion_version,
                challenger_version=row.challenger_version,
                champion_mae=row.champion_mae,
                challenger_mae=row.challenger_mae,
                naive_mae=row.naive_mae,
                metrics=row.metrics,
                promoted=bool(row.promoted),
                reason=row.reason,
                decided_at=_aware(row.decided_at),
            )
            for row in rows
        ]

    # -- prediction log -------------------------------------------------------------------------------
    def log_predictions(self, rows: list[LoggedPrediction]) -> None:
        """Append served forecasts in one transaction (the service batches them off the request path)."""
        if not rows:
            return
        with self._engine.begin() as connection:
            connection.execute(
                prediction_log.insert(),
                [
                    {
                        "timestamp": _naive_utc(row.timestamp),
                        "target_time": _naive_utc(row.target_time),
                        "predicted_close": row.predicted_close,
                        "last_close": row.last_close,
                        "model_version": row.model_version,
                        "served_at": _naive_utc(row.served_at),
                    }
                    for row in rows
                ],
            )

    def read_predictions(
        self, start: datetime | None = None, end: datetime | None = None, limit: int = 10_000
    ) -> list[LoggedPrediction]:
        """Logged forecasts whose target hour is in [start, end], oldest target first."""
        query = (
            select(prediction_log).order_by(prediction_log.c.target_time, prediction_log.c.id).limit(limit)
        )
        if start is not None:
            query = query.where(prediction_log.c.target_time >= _naive_utc(start))
        if end is not None:
            query = query.where(prediction_log.c.target_time <= _naive_utc(end))
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            LoggedPrediction(
                timestamp=_aware(row.timestamp),
                target_time=_aware(row.target_time),
                predicted_close=row.predicted_close,
                last_close=row.last_close,
                model_version=row.model_version,
                served_at=_aware(row.served_at),
            )
            for row in rows
        ]
