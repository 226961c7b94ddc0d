"""``PriceStore``: the SQL side of btcmlops, the same code on SQLite and MySQL/MariaDB.

Times go in tz-aware and come out tz-aware UTC; the database holds them as naive UTC. A naive time
passed in is refused rather than guessed at, since a local time taken for UTC moves every candle.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, Row, create_engine, event, func, select
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import Insert

from btcmlops.candles import CANDLE_VALUES, candle_values
from btcmlops.clock import SimClock
from btcmlops.settings import StoreSettings
from btcmlops.store.journal import RegistryJournal
from btcmlops.store.schema import candles as candles_table
from btcmlops.store.schema import contest_decisions, prediction_log, serving_status, sim_clock
from btcmlops.store.times import aware as _aware
from btcmlops.store.times import naive_utc as _naive_utc

SERVED_REPORT_EVERY_S = 10.0
"""An inference replica says what it serves when it changes, and at least this often."""
SERVED_STALE_AFTER_S = 3 * SERVED_REPORT_EVERY_S
"""A replica silent this long is taken for gone: the clock no longer waits for it."""

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MAX_MODEL_NAME = 255


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
    sim_made_at: datetime | None = None
    """Sim time the forecast was made at (None: no sim clock, e.g. a replay served by hand)."""
    entry_id: str | None = None
    """The serving replica's unique id of this entry (at most 32 characters): logging it again is a
    no-op, so a write-ahead log replayed after a crash adds nothing already written. None: no id."""
    interval_level: float | None = None
    """The level of the central interval served with the forecast (None: logged before intervals)."""
    lower_close: float | None = None
    """The interval's lower close at ``target_time`` (None with ``interval_level``)."""
    upper_close: float | None = None
    """The interval's upper close at ``target_time`` (None with ``interval_level``)."""
    id: int | None = field(default=None, compare=False)
    """The log's row id, once written (orders forecasts of the same target hour; not part of equality)."""

    @property
    def live(self) -> bool:
        """Made before its target hour closed in sim time: a forecast, not a look back."""
        return self.sim_made_at is not None and self.sim_made_at < self.target_time + timedelta(hours=1)


def counts_as_live(row: LoggedPrediction, train_end: datetime | None) -> bool:
    """Whether a logged forecast counts as live: made before its target hour closed in sim time, *and*
    for a target hour after the training window of the version that made it.

    A reset of the clock to an earlier day has the client ask again for hours the champion was trained
    on; made "in time" by the replayed clock, those forecasts are still in-sample (``/predict`` says
    ``in_sample: true``) and never count as live. A version whose window is not known (``None``) does
    not count either.
    """
    return row.live and train_end is not None and row.target_time > train_end


@dataclass(frozen=True)
class DecisionRow:
    """One contest decision as the store keeps it (times tz-aware UTC).

    ``eval_start`` and ``eval_end`` are the first and last target hour of the shadow month; ``metrics``
    is a JSON object with every metric of the three contestants.
    """

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


class DecisionConflictError(ValueError):
    """A different decision is already recorded for the same registered model and shadow month."""


def _json_object(metrics: dict[str, Any]) -> dict[str, Any]:
    """Return ``metrics`` as it will read back, refusing what JSON (or MariaDB's JSON check) cannot hold."""
    if not isinstance(metrics, dict):
        raise ValueError(f"metrics must be a JSON object, not {type(metrics).__name__}")
    try:
        normalized: dict[str, Any] = json.loads(json.dumps(metrics, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"metrics are not plain JSON (finite numbers, strings, lists, objects): {error}"
        ) from None
    return normalized


def _same_decision(recorded: DecisionRow, row: DecisionRow) -> bool:
    """Tell whether two rows record the same decision; when it was recorded does not matter."""
    return all(
        getattr(recorded, field.name) == getattr(row, field.name)
        for field in fields(DecisionRow)
        if field.name != "decided_at"
    )


def engine_options(url: str, settings: StoreSettings) -> dict[str, Any]:
    """``create_engine`` keywords that bound every wait on the database at ``url`` by ``settings``.

    MySQL/MariaDB (pymysql): connect, read and write timeouts on the socket, so a server that accepts
    and then says nothing (its greeting is read with the read timeout too) fails the call; a full pool
    is waited for at most ``pool_timeout_s``, and a connection taken from the pool is pinged first (the
    server may have closed it). SQLite: the busy timeout, and no ping: a file does not drop a connection,
    and the live stack's processes take one every few milliseconds.
    """
    backend = make_url(url).get_backend_name()
    options: dict[str, Any] = {} if backend == "sqlite" else {"pool_pre_ping": True}
    if backend in ("mysql", "mariadb"):
        options["connect_args"] = {
            "connect_timeout": settings.connect_timeout_s,
            "read_timeout": settings.read_timeout_s,
            "write_timeout": settings.write_timeout_s,
        }
        options["pool_timeout"] = settings.pool_timeout_s
    elif backend == "sqlite":
        options["connect_args"] = {"timeout": settings.busy_timeout_s}
    return options


logger = logging.getLogger(__name__)


def _write_ahead(connection: Any, _: object) -> None:
    """An SQLite connection in write-ahead mode, its commits synced at checkpoints only (``sqlite_wal``).

    The mode is kept in the file; when another connection holds it locked, the next connection sets it.
    """
    cursor = connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    except sqlite3.OperationalError as error:  # locked by another writer
        logger.info("SQLite write-ahead mode not set on this connection: %s", error)
    finally:
        cursor.close()


class PriceStore:
    """Candles and contest decisions behind one SQLAlchemy URL (``sqlite:///…`` or ``mysql+pymysql://…``)."""

    def __init__(self, url: str, settings: StoreSettings | None = None) -> None:
        """Open (lazily) the store at ``url``; ``settings`` give its timeouts (default: the settings' own).

        A server that does not answer fails a call after the timeouts (connect, read, write, a free
        pooled connection) instead of hanging whoever called.
        """
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        self.settings = settings or StoreSettings()
        """The settings it was opened with; the journal's rules (``change_grace_s``) are read from them."""
        self._engine: Engine = create_engine(url, **engine_options(url, self.settings))
        if self.settings.sqlite_wal and self._engine.dialect.name == "sqlite":
            event.listen(self._engine, "connect", _write_ahead)

    def migrate(self) -> None:
        """Bring the schema to the newest migration; harmless on an up-to-date database."""
        config = Config()
        # ConfigParser interpolates "%": an install path containing one must not break migrations.
        config.set_main_option("script_location", str(_MIGRATIONS).replace("%", "%%"))
        with self._engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @property
    def journal(self) -> RegistryJournal:
        """The registry journal, champion audit and trainer lease in this store's database."""
        return RegistryJournal(self._engine)

    def dispose(self) -> None:
        """Close the pooled connections (tests drop their database afterwards)."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the pooled connections however the block ends: ``with PriceStore(...) as store:``."""
        self.dispose()

    def ping(self) -> None:
        """Raise unless the store answers a read of its own table (a live server is not enough)."""
        with self._engine.connect() as connection:
            connection.execute(select(candles_table.c.open_time).limit(1)).all()

    # -- candles --------------------------------------------------------------------------------------
    def upsert_candles(self, candles: pd.DataFrame) -> UpsertReport:
        """Insert new candles and update changed ones, in one transaction (all or nothing).

        The stored rows in the frame's time range are read in one query and compared in memory, so
        only what is new or different is written, in bulk, and the report says which was which.

        Args:
            candles: Canonical candles: ``open_time`` tz-aware and unique, OHLCV finite.

        Raises:
            ValueError: A column is missing, ``open_time`` is naive or repeated, or a value is not finite.
        """
        if candles.empty:
            return UpsertReport(0, 0, 0)
        times, values = self._checked_rows(candles)
        incoming = dict(zip(times, values, strict=True))
        with self._engine.begin() as connection:
            query = select(*_CANDLE_ROW).where(
                candles_table.c.open_time >= min(times), candles_table.c.open_time <= max(times)
            )
            existing = {row[0]: tuple(row[1:]) for row in connection.execute(query)}
            written_at = _naive_utc(datetime.now(UTC))
            new = [
                {"open_time": time, **dict(zip(CANDLE_VALUES, row, strict=True)), "written_at": written_at}
                for time, row in incoming.items()
                if time not in existing
            ]
            changed = [
                {"open_time": time, **dict(zip(CANDLE_VALUES, row, strict=True)), "written_at": written_at}
                for time, row in incoming.items()
                if time in existing and existing[time] != row
            ]
            if new:
                connection.execute(candles_table.insert(), new)
            if changed:
                connection.execute(self._overwrite_statement(), changed)
        return UpsertReport(len(new), len(changed), len(incoming) - len(new) - len(changed))

    @staticmethod
    def _checked_rows(candles: pd.DataFrame) -> tuple[list[datetime], list[tuple[float, ...]]]:
        missing = [name for name in ("open_time", *CANDLE_VALUES) if name not in candles.columns]
        if missing:
            raise ValueError(f"candles lack column(s) {missing}")
        open_time = candles["open_time"]
        if not isinstance(open_time.dtype, pd.DatetimeTZDtype):
            raise ValueError(f"open_time must be tz-aware (datetime64[ns, UTC]), not {open_time.dtype}")
        # numpy, not pandas, for the checks and conversions: the feed writes one candle per sim hour, and
        # the pandas calls were a millisecond of each (a fifth of the feed's CPU per hour)
        naive_ns = open_time.to_numpy(dtype="datetime64[ns]")  # UTC
        if len(np.unique(naive_ns)) != len(naive_ns):
            repeated = open_time[open_time.duplicated()]
            raise ValueError(f"open_time repeats: {repeated.iloc[0].isoformat()}")
        values = candle_values(candles)
        if not np.isfinite(values).all():
            raise ValueError("candle values must be finite numbers")
        # datetime64[us] converts to datetime.datetime in bulk (nanoseconds would give ints).
        times: list[datetime] = naive_ns.astype("datetime64[us]").tolist()
        return times, [tuple(row) for row in values.tolist()]

    def _overwrite_statement(self) -> Insert:
        """Build an insert that overwrites an existing hour, in the backend's own upsert syntax.

        Only rows known to exist go through it, so it acts as an update; unlike an executemany of
        UPDATEs (one round trip per row on MySQL) it is sent as multi-row statements.
        """
        if self._engine.dialect.name in ("mysql", "mariadb"):
            statement = mysql.insert(candles_table)
            return statement.on_duplicate_key_update(
                {name: statement.inserted[name] for name in (*CANDLE_VALUES, "written_at")}
            )
        if self._engine.dialect.name == "sqlite":
            lite = sqlite.insert(candles_table)
            return lite.on_conflict_do_update(
                index_elements=[candles_table.c.open_time],
                set_={name: lite.excluded[name] for name in (*CANDLE_VALUES, "written_at")},
            )
        raise NotImplementedError(f"no upsert for {self._engine.dialect.name}; use SQLite or MySQL/MariaDB")

    def read_candles(
        self, start: datetime | None = None, end: datetime | None = None, *, limit: int | None = None
    ) -> pd.DataFrame:
        """Return candles with ``start <= open_time <= end`` (either bound optional) in canonical form.

        With ``limit``, the oldest ``limit`` of them (one page; the next starts an hour after the last).
        """
        query = select(*_CANDLE_ROW).order_by(candles_table.c.open_time)
        if limit is not None:
            query = query.limit(limit)
        if start is not None:
            query = query.where(candles_table.c.open_time >= _naive_utc(start))
        if end is not None:
            query = query.where(candles_table.c.open_time <= _naive_utc(end))
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return _candle_frame(rows)

    def read_candles_written(self, since: datetime) -> tuple[pd.DataFrame, datetime | None]:
        """Candles written (inserted or changed) at or after real time ``since``, and the newest write.

        How a reader that keeps candles in memory learns of a late candle (a gap filled) or a corrected
        one; it reads again from a little before the newest write it saw, as a write that was still
        committing may carry an earlier time.
        """
        query = (
            select(*_CANDLE_ROW, candles_table.c.written_at)
            .where(candles_table.c.written_at >= _naive_utc(since))
            .order_by(candles_table.c.open_time)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        newest = max((row.written_at for row in rows), default=None)
        return _candle_frame([row[:-1] for row in rows]), None if newest is None else _aware(newest)

    def earliest_candle_time(self) -> datetime | None:
        """Open time of the oldest stored candle (tz-aware UTC), or None if there is none."""
        with self._engine.connect() as connection:
            earliest = connection.execute(select(func.min(candles_table.c.open_time))).scalar_one()
        return None if earliest is None else _aware(earliest)

    def latest_candle_time(self) -> datetime | None:
        """Open time of the newest stored candle (tz-aware UTC), or None if there is none."""
        with self._engine.connect() as connection:
            latest = connection.execute(select(func.max(candles_table.c.open_time))).scalar_one()
        return None if latest is None else _aware(latest)

    def candle_count(self) -> int:
        """Count the stored candles."""
        with self._engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(candles_table)).scalar_one())

    # -- decisions ------------------------------------------------------------------------------------
    def record_decision(self, row: DecisionRow) -> None:
        """Record a decision once per (registered model, shadow month).

        Recording it again (a restart repeating itself) is a no-op when it is the same decision: every
        column but ``decided_at`` equal. The database's unique key settles a race between two writers.

        Raises:
            DecisionConflictError: A different decision is recorded for that model and month.
            ValueError: A time is naive, ``metrics`` is not a JSON object, or the model name is too long.
        """
        if len(row.registered_model) > _MAX_MODEL_NAME:
            raise ValueError(f"registered model name longer than {_MAX_MODEL_NAME} characters")
        # Plain Python types: a numpy scalar from the scoring code is not something every driver takes.
        row = replace(
            row,
            champion_version=int(row.champion_version),
            challenger_version=int(row.challenger_version),
            champion_mae=float(row.champion_mae),
            challenger_mae=float(row.challenger_mae),
            naive_mae=float(row.naive_mae),
            metrics=_json_object(row.metrics),
            promoted=bool(row.promoted),
        )
        values = {
            **{field.name: getattr(row, field.name) for field in fields(DecisionRow)},
            "eval_start": _naive_utc(row.eval_start),
            "eval_end": _naive_utc(row.eval_end),
            "decided_at": _naive_utc(row.decided_at),
        }
        try:
            with self._engine.begin() as connection:
                connection.execute(contest_decisions.insert(), values)
        except IntegrityError:
            recorded = self._decision(row.registered_model, values["eval_start"])
            if recorded is None:
                raise  # some other constraint
            if not _same_decision(recorded, row):
                raise DecisionConflictError(
                    f"a different decision is already recorded for {row.registered_model} from "
                    f"{recorded.eval_start.isoformat()}: {recorded}"
                ) from None

    def _decision(self, registered_model: str, eval_start: datetime) -> DecisionRow | None:
        query = select(contest_decisions).where(
            contest_decisions.c.registered_model == registered_model,
            contest_decisions.c.eval_start == eval_start,
        )
        with self._engine.connect() as connection:
            found = connection.execute(query).first()
        return None if found is None else self._decision_row(found._mapping)

    @staticmethod
    def _decision_row(row: Any) -> DecisionRow:
        return DecisionRow(
            registered_model=row["registered_model"],
            eval_start=_aware(row["eval_start"]),
            eval_end=_aware(row["eval_end"]),
            champion_version=row["champion_version"],
            challenger_version=row["challenger_version"],
            champion_mae=row["champion_mae"],
            challenger_mae=row["challenger_mae"],
            naive_mae=row["naive_mae"],
            metrics=row["metrics"],
            promoted=bool(row["promoted"]),
            reason=row["reason"],
            decided_at=_aware(row["decided_at"]),
        )

    def list_decisions(self, registered_model: str | None = None) -> list[DecisionRow]:
        """Return recorded decisions, oldest shadow month first (all models, or one)."""
        query = select(contest_decisions).order_by(
            contest_decisions.c.eval_start, contest_decisions.c.registered_model
        )
        if registered_model is not None:
            query = query.where(contest_decisions.c.registered_model == registered_model)
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return [self._decision_row(row._mapping) for row in rows]

    # -- prediction log -------------------------------------------------------------------------------
    def log_predictions(self, rows: list[LoggedPrediction]) -> None:
        """Append served forecasts in one transaction (the service batches them off the request path).

        A row whose ``entry_id`` is already logged is skipped (insert-or-ignore on the unique key, and
        only on it), so a batch written again after a crash between commit and acknowledgement is
        harmless.
        """
        if not rows:
            return
        with self._engine.begin() as connection:
            connection.execute(
                self._log_insert(),
                [
                    {
                        "timestamp": _naive_utc(row.timestamp),
                        "target_time": _naive_utc(row.target_time),
                        "predicted_close": row.predicted_close,
                        "last_close": row.last_close,
                        "model_version": row.model_version,
                        "served_at": _naive_utc(row.served_at),
                        "sim_made_at": None if row.sim_made_at is None else _naive_utc(row.sim_made_at),
                        "entry_id": row.entry_id,
                        "interval_level": row.interval_level,
                        "lower_close": row.lower_close,
                        "upper_close": row.upper_close,
                    }
                    for row in rows
                ],
            )

    def _log_insert(self) -> Insert:
        """An insert into the prediction log that skips a row whose ``entry_id`` is there already.

        Not MySQL's INSERT IGNORE, which would also turn other errors (a NULL, a truncation) into
        warnings: a no-op update on a duplicate key, and SQLite's ON CONFLICT on that key.
        """
        if self._engine.dialect.name in ("mysql", "mariadb"):
            statement = mysql.insert(prediction_log)
            return statement.on_duplicate_key_update(entry_id=prediction_log.c.entry_id)
        if self._engine.dialect.name == "sqlite":
            return sqlite.insert(prediction_log).on_conflict_do_nothing(
                index_elements=[prediction_log.c.entry_id]
            )
        raise NotImplementedError(f"no insert-or-ignore for {self._engine.dialect.name}")

    def read_predictions(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 10_000,
        *,
        after: tuple[datetime, int] | None = None,
    ) -> list[LoggedPrediction]:
        """Return logged forecasts whose target hour is in [start, end], oldest target first.

        ``after`` (a row's target time and id) starts after that row: the next page of a long read,
        found by the index, however deep.
        """
        query = (
            select(prediction_log).order_by(prediction_log.c.target_time, prediction_log.c.id).limit(limit)
        )
        if after is not None:
            after_time, after_id = _naive_utc(after[0]), after[1]
            query = query.where(
                (prediction_log.c.target_time > after_time)
                | ((prediction_log.c.target_time == after_time) & (prediction_log.c.id > after_id))
            )
        if start is not None:
            query = query.where(prediction_log.c.target_time >= _naive_utc(start))
        if end is not None:
            query = query.where(prediction_log.c.target_time <= _naive_utc(end))
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return [_logged(row) for row in rows]

    def read_predictions_logged_after(self, after_id: int, limit: int = 10_000) -> list[LoggedPrediction]:
        """Logged forecasts whose row id is above ``after_id``, in the order they were logged (by id).

        How a reader that follows the log (the service's live scores) takes only what is new since its
        last look, by the primary key.
        """
        query = (
            select(prediction_log)
            .where(prediction_log.c.id > after_id)
            .order_by(prediction_log.c.id)
            .limit(limit)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return [_logged(row) for row in rows]

    # -- sim clock ------------------------------------------------------------------------------------
    def read_clock(self) -> SimClock | None:
        """The shared sim clock, or None where no clock was ever set (a replay's store)."""
        with self._engine.connect() as connection:
            row = connection.execute(select(sim_clock).where(sim_clock.c.id == 1)).first()
        return None if row is None else _clock_of(row)

    def write_clock(self, clock: SimClock) -> None:
        """Replace the shared sim clock (one row)."""
        with self._engine.begin() as connection:
            updated = connection.execute(
                sim_clock.update().where(sim_clock.c.id == 1).values(_clock_values(clock))
            )
            if updated.rowcount == 0:
                connection.execute(sim_clock.insert().values(id=1, **_clock_values(clock)))

    def update_clock(self, change: Callable[[SimClock], SimClock]) -> SimClock | None:
        """Change the clock as it is now, in one transaction with the row locked (None: no clock).

        The API (speed, pause), the trainer (the hold) and the feed (the end) all change the one row:
        each reads and writes it under a lock, so none undoes another's change.
        """
        with self._engine.begin() as connection:
            row = connection.execute(select(sim_clock).where(sim_clock.c.id == 1).with_for_update()).first()
            if row is None:
                return None
            current = _clock_of(row)
            updated = change(current)
            if updated is not current:  # a change that moves nothing writes nothing
                connection.execute(
                    sim_clock.update().where(sim_clock.c.id == 1).values(_clock_values(updated))
                )
        return updated

    # -- what the inference service serves ------------------------------------------------------------
    def write_served_version(
        self, registered_model: str, version: int | None, now: datetime, *, replica: str = ""
    ) -> None:
        """Say which version one inference replica serves now (the trainer waits for every replica)."""
        key = (serving_status.c.name == registered_model) & (serving_status.c.replica == replica)
        values = {"served_version": version, "updated_at": _naive_utc(now)}
        with self._engine.begin() as connection:
            updated = connection.execute(serving_status.update().where(key).values(values))
            if updated.rowcount == 0:
                try:
                    with connection.begin_nested():
                        connection.execute(
                            serving_status.insert().values(name=registered_model, replica=replica, **values)
                        )
                except IntegrityError:  # written meanwhile by the same replica's previous report
                    connection.execute(serving_status.update().where(key).values(values))

    def forget_served(self, registered_model: str, replica: str) -> None:
        """A replica that stops says so, so the trainer does not wait for it."""
        with self._engine.begin() as connection:
            connection.execute(
                serving_status.delete().where(
                    (serving_status.c.name == registered_model) & (serving_status.c.replica == replica)
                )
            )

    def served_versions(self, registered_model: str, now: datetime) -> dict[str, int | None]:
        """What each live inference replica says it serves (by its host:pid).

        Live: it reported within ``SERVED_STALE_AFTER_S`` of ``now``; a replica killed without a word
        stops counting then.
        """
        since = now - timedelta(seconds=SERVED_STALE_AFTER_S)
        query = select(serving_status.c.replica, serving_status.c.served_version).where(
            (serving_status.c.name == registered_model) & (serving_status.c.updated_at >= _naive_utc(since))
        )
        with self._engine.connect() as connection:
            return {
                str(row.replica): None if row.served_version is None else int(row.served_version)
                for row in connection.execute(query)
            }


_CANDLE_ROW = (candles_table.c.open_time, *(candles_table.c[name] for name in CANDLE_VALUES))


def _candle_frame(rows: Any) -> pd.DataFrame:
    """Candles in canonical form from rows of ``_CANDLE_ROW``.

    Built column by column: a frame of rows, then typed, cost the service 2 ms for each new hour's one
    candle (a sixth of its CPU per sim hour); this is a seventh of that, and the same frame.
    """
    columns = tuple(zip(*rows, strict=True)) or ((),) * (1 + len(CANDLE_VALUES))
    data: dict[str, Any] = {"open_time": pd.DatetimeIndex(columns[0]).tz_localize(UTC).as_unit("ns")}
    for name, values in zip(CANDLE_VALUES, columns[1:], strict=True):
        data[name] = np.array(values, dtype=np.float64)
    return pd.DataFrame(data)


def _clock_of(row: Any) -> SimClock:
    return SimClock(
        sim_anchor=_aware(row.sim_anchor),
        real_anchor=_aware(row.real_anchor),
        speed=float(row.speed),
        paused=bool(row.paused),
        hold_at=_aware(row.hold_at),
        hold_reason=row.hold_reason or "",
        end_at=_aware(row.end_at),
        paced=bool(row.paced),
        forecast_due=_aware(row.forecast_due),
    )


def _clock_values(clock: SimClock) -> dict[str, Any]:
    return {
        "sim_anchor": _naive_utc(clock.sim_anchor),
        "real_anchor": _naive_utc(clock.real_anchor),
        "speed": clock.speed,
        "paused": clock.paused,
        "hold_at": None if clock.hold_at is None else _naive_utc(clock.hold_at),
        "hold_reason": clock.hold_reason[:255],
        "end_at": None if clock.end_at is None else _naive_utc(clock.end_at),
        "paced": clock.paced,
        "forecast_due": None if clock.forecast_due is None else _naive_utc(clock.forecast_due),
    }


def _logged(row: Row[Any]) -> LoggedPrediction:
    return LoggedPrediction(
        timestamp=_aware(row.timestamp),
        target_time=_aware(row.target_time),
        predicted_close=row.predicted_close,
        last_close=row.last_close,
        model_version=row.model_version,
        served_at=_aware(row.served_at),
        sim_made_at=_aware(row.sim_made_at),
        entry_id=row.entry_id,
        interval_level=row.interval_level,
        lower_close=row.lower_close,
        upper_close=row.upper_close,
        id=row.id,
    )
