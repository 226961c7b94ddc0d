"""The long reads' pages (``/candles``, ``/predictions``), read from the store and written as JSON bytes.

A page of 10,000 rows is tens of milliseconds of CPU in Python (the driver's rows, the dicts, the JSON).
Built in the service's interpreter, that time is taken from ``/predict`` and ``/readyz``, which share
its one GIL. So the service builds them in its read workers (``serving.read_workers``): processes of
their own, each with its own engine on the same store, whose only answer is the page's bytes. The
functions here are what a worker runs; each takes the store it reads, so the service can also run them
on a thread of its own (``BTCMLOPS_SERVE__READ_WORKERS=0``), and a test can call them directly.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from btcmlops.candles import CANDLE_VALUES
from btcmlops.model import naive_interval
from btcmlops.model.naive import NAIVE_WINDOW_HOURS
from btcmlops.redaction import describe_error
from btcmlops.settings import StoreSettings
from btcmlops.store import LoggedPrediction, PriceStore, counts_as_live

PARENT_CHECK_S = 1.0
"""How often a read worker checks that the service that started it is still there (else it exits)."""


@dataclass(frozen=True)
class CandlesPage:
    """A page of ``/candles``: its JSON, and the last row's open time when more rows follow."""

    body: bytes
    last: datetime | None


@dataclass(frozen=True)
class PredictionsPage:
    """A page of ``/predictions``: its JSON, the cursor of the next page (None: the last page), and the
    versions whose training window was not among the ``training_ends`` given (their rows: not live)."""

    body: bytes
    next_cursor: str | None
    unknown_versions: frozenset[int]


def iso(moment: datetime) -> str:
    """``2024-03-01T00:00:00Z``: a time as the API writes it."""
    return moment.isoformat().replace("+00:00", "Z")


def _encode(rows: list[dict[str, Any]]) -> bytes:
    return json.dumps(rows, separators=(",", ":")).encode()


def _interval(level: float | None, lower: float | None, upper: float | None) -> dict[str, float] | None:
    if level is None or lower is None or upper is None or not (math.isfinite(lower) and math.isfinite(upper)):
        return None
    return {"level": level, "lower": lower, "upper": upper}


def _naive_intervals(
    store: PriceStore, rows: list[LoggedPrediction], default_level: float
) -> list[dict[str, float] | None]:
    """Naive's interval for each row's hour, at the row's level (``default_level`` for a row logged
    without one), from the store's candles: the trailing window before the page's first hour on."""
    if not rows:
        return []
    levels = [default_level if row.interval_level is None else row.interval_level for row in rows]
    first = min(row.timestamp for row in rows)
    candles = store.read_candles(
        start=first - timedelta(hours=NAIVE_WINDOW_HOURS), end=max(row.timestamp for row in rows)
    )
    bounds: dict[tuple[datetime, float], tuple[float, float]] = {}
    for level in set(levels):
        hours = sorted({row.timestamp for row, at in zip(rows, levels, strict=True) if at == level})
        lower, upper = naive_interval(candles, pd.DatetimeIndex(hours), level)
        for hour, low, high in zip(hours, lower, upper, strict=True):
            bounds[hour, level] = (float(low), float(high))
    return [_interval(level, *bounds[row.timestamp, level]) for row, level in zip(rows, levels, strict=True)]


def candles_page(store: PriceStore, start: datetime | None, end: datetime | None, limit: int) -> CandlesPage:
    """Candles in [start, end], oldest first, at most ``limit`` of them."""
    frame = store.read_candles(start=start, end=end, limit=limit + 1)
    more = len(frame) > limit
    frame = frame.iloc[:limit]
    times = frame["open_time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ").tolist()
    values = frame.loc[:, list(CANDLE_VALUES)].to_numpy().tolist()
    rows = [
        {"open_time": moment, **dict(zip(CANDLE_VALUES, numbers, strict=True))}
        for moment, numbers in zip(times, values, strict=True)
    ]
    last = pd.Timestamp(frame["open_time"].iloc[-1]).to_pydatetime() if more else None
    return CandlesPage(_encode(rows), last)


def predictions_page(
    store: PriceStore,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    after: tuple[datetime, int] | None,
    training_ends: dict[int, datetime],
    default_level: float,
) -> PredictionsPage:
    """Logged forecasts whose target hour is in [start, end], after the row ``after``, oldest target
    first, at most ``limit``; each with ``live`` by ``counts_as_live`` against ``training_ends`` (each
    version's last training target hour) and naive's interval for its hour."""
    rows = store.read_predictions(start=start, end=end, limit=limit + 1, after=after)
    more = len(rows) > limit
    rows = rows[:limit]
    naive = _naive_intervals(store, rows, default_level)
    body = [
        {
            "timestamp": iso(row.timestamp),
            "target_time": iso(row.target_time),
            "predicted_close": row.predicted_close,
            "last_close": row.last_close,
            "model_version": row.model_version,
            "served_at": iso(row.served_at),
            "sim_made_at": None if row.sim_made_at is None else iso(row.sim_made_at),
            "live": counts_as_live(row, training_ends.get(row.model_version)),
            "interval": _interval(row.interval_level, row.lower_close, row.upper_close),
            "naive_interval": naive_bounds,
        }
        for row, naive_bounds in zip(rows, naive, strict=True)
    ]
    last = rows[-1] if more else None
    cursor = None if last is None else f"{int(last.target_time.timestamp())}:{last.id}"
    unknown = frozenset(row.model_version for row in rows) - training_ends.keys()
    return PredictionsPage(_encode(body), cursor, unknown)


# -- in a read worker (a process of its own) -------------------------------------------------------------
_worker_store: PriceStore | None = None


def start_worker(store_url: str, store_settings: StoreSettings, parent_pid: int, nice: int) -> None:
    """Set up a read worker: lower its CPU priority by ``nice``, open its own engine on the store, and
    watch the service that started it: a worker whose service is gone (even by ``kill -9``, which runs
    no clean-up) exits within ``PARENT_CHECK_S``."""
    global _worker_store
    if nice:
        os.nice(nice)
    _worker_store = PriceStore(store_url, store_settings)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), name="parent-watch", daemon=True).start()


def _exit_with_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:  # an orphan is adopted by another process: its parent id changes
        time.sleep(PARENT_CHECK_S)
    os._exit(0)  # the service is gone: nobody is left to answer; nothing here holds anything to flush


def worker_ready() -> int:
    """Nothing, in a worker (its process id): the service knows the worker is up once this answers."""
    return os.getpid()


class PageStoreError(Exception):
    """The store failed a page's read in a read worker: its driver's error said without SQL,
    credentials or host (``describe_error``), which, unlike the driver's error, crosses back to the
    service intact (the service answers it as any store failure: 503)."""


def in_worker(page: Any, *args: Any) -> Any:
    """Run ``page(store, *args)`` on this worker's store.

    Raises:
        PageStoreError: The store refused, lost the connection, or had no free connection in time.
    """
    assert _worker_store is not None, "start_worker runs first in every read worker"
    try:
        return page(_worker_store, *args)
    except (DBAPIError, PoolTimeoutError) as error:
        raise PageStoreError(describe_error(error)) from None
