"""The long reads (``/candles``, ``/predictions``): paged, capped, and never allowed to starve forecasts.

A page holds at most ``BTCMLOPS_SERVE__MAX_READ_ROWS`` rows, found by the index (keyset paging: the
next page starts after the last row, however deep), and says where the next one starts in a ``Link``
header (``rel="next"``). At most ``BTCMLOPS_SERVE__MAX_CONCURRENT_READS`` run at once, each on its own
worker thread and database connection: the rest wait a moment, then get 503 with ``Retry-After``, so
``/predict``, ``/readyz`` and the champion watcher always find a thread and a connection. A read the
store does not answer within ``BTCMLOPS_SERVE__STORE_TIMEOUT_S`` is a 503 like any request that needs
the store (``limits.ReadGate``). A read whose client has gone is dropped before it reaches the
database. The JSON is written straight from the rows, without a model object per row.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from btcmlops.model import naive_interval
from btcmlops.model.naive import NAIVE_WINDOW_HOURS
from btcmlops.serving.deps import AppSettings, Gate, Service, Store
from btcmlops.serving.limits import ReadGate
from btcmlops.serving.live_scores import counts_as_live
from btcmlops.serving.schemas import CandlePublic, ErrorPublic, LoggedPredictionPublic, UtcDatetime
from btcmlops.store import CANDLE_VALUES, LoggedPrediction, PriceStore

router = APIRouter(tags=["read"])

_PAGED: dict[int | str, dict[str, Any]] = {
    503: {
        "model": ErrorPublic,
        "description": "Too many long reads at once, or the price store is unreachable (Retry-After)",
    },
}
_LINK: dict[str, Any] = {
    "Link": {
        "description": 'The next page, `<url>; rel="next"`, when there is one.',
        "schema": {"type": "string"},
    }
}


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _encode(rows: list[dict[str, Any]]) -> bytes:
    return json.dumps(rows, separators=(",", ":")).encode()


def _json(body: bytes, next_url: str | None) -> Response:
    headers = {"Link": f'<{next_url}>; rel="next"'} if next_url else None
    return Response(body, media_type="application/json", headers=headers)


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


def _limit(limit: int, gate: ReadGate) -> int:
    if limit > gate.max_rows:
        raise RequestValidationError(
            [
                {
                    "type": "less_than_equal",
                    "loc": ("query", "limit"),
                    "msg": f"limit must be at most {gate.max_rows} rows a page "
                    '(BTCMLOPS_SERVE__MAX_READ_ROWS): follow the Link header (rel="next") for more',
                    "input": limit,
                }
            ]
        )
    return limit


@router.get(
    "/candles",
    response_model=list[CandlePublic],
    responses={**_PAGED, 200: {"headers": _LINK}},
)
async def candles(
    request: Request,
    gate: Gate,
    store: Store,
    start: Annotated[UtcDatetime | None, Query(examples=["2024-03-01T00:00:00Z"])] = None,
    end: Annotated[UtcDatetime | None, Query(examples=["2024-03-07T23:00:00Z"])] = None,
    limit: Annotated[
        int, Query(ge=1, description="Rows in this page (at most the service's page size).")
    ] = 5_000,
) -> Response:
    """Candles in [start, end] from the price store, oldest first, one page at a time."""
    limit = _limit(limit, gate)

    def page() -> tuple[bytes, datetime | None]:  # read and written off the event loop
        frame = store.read_candles(start=start, end=end, limit=limit + 1)
        more = len(frame) > limit
        frame = frame.iloc[:limit]
        times = frame["open_time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ").tolist()
        values = frame.loc[:, list(CANDLE_VALUES)].to_numpy().tolist()
        rows = [
            {"open_time": moment, **dict(zip(CANDLE_VALUES, numbers, strict=True))}
            for moment, numbers in zip(times, values, strict=True)
        ]
        last: datetime | None = pd.Timestamp(frame["open_time"].iloc[-1]).to_pydatetime() if more else None
        return _encode(rows), last

    body, last = await gate.run(request, page)
    next_url = None
    if last is not None:
        next_url = str(request.url.include_query_params(start=_iso(last + timedelta(hours=1))))
    return _json(body, next_url)


@router.get(
    "/predictions",
    response_model=list[LoggedPredictionPublic],
    responses={**_PAGED, 200: {"headers": _LINK}},
)
async def predictions(
    request: Request,
    gate: Gate,
    store: Store,
    service: Service,
    settings: AppSettings,
    start: Annotated[UtcDatetime | None, Query(description="First target hour")] = None,
    end: Annotated[UtcDatetime | None, Query(description="Last target hour")] = None,
    limit: Annotated[
        int, Query(ge=1, description="Rows in this page (at most the service's page size).")
    ] = 5_000,
    after: Annotated[
        str | None,
        Query(
            description="Where this page starts: the cursor in the previous page's Link header (rel=next).",
            pattern=r"^[0-9]{1,11}:[0-9]{1,18}$",  # seconds to year 5138, a row id within BIGINT
            max_length=30,
        ),
    ] = None,
) -> Response:
    """Served forecasts whose target hour is in [start, end], with the version that served each and the
    interval it served (null before intervals), oldest target first, one page at a time; beside each,
    naive's interval for the same hour and level, from the store's candles. ``live``: made before its
    target hour closed in sim time, for an hour after the serving version's training window (never an
    in-sample one, whatever the clock did)."""
    limit = _limit(limit, gate)
    cursor = None
    if after is not None:
        seconds, row_id = (int(part) for part in after.split(":"))
        try:
            cursor = (datetime.fromtimestamp(seconds, tz=UTC), row_id)
        except (OverflowError, OSError, ValueError):
            raise RequestValidationError(
                [{"type": "value_error", "loc": ("query", "after"), "msg": "not a cursor", "input": after}]
            ) from None

    def page() -> tuple[bytes, str | None]:  # read and written off the event loop
        rows = store.read_predictions(start=start, end=end, limit=limit + 1, after=cursor)
        more = len(rows) > limit
        rows = rows[:limit]
        ends = service.training_ends({row.model_version for row in rows})
        naive = _naive_intervals(store, rows, settings.model.interval_level)
        body = [
            {
                "timestamp": _iso(row.timestamp),
                "target_time": _iso(row.target_time),
                "predicted_close": row.predicted_close,
                "last_close": row.last_close,
                "model_version": row.model_version,
                "served_at": _iso(row.served_at),
                "sim_made_at": None if row.sim_made_at is None else _iso(row.sim_made_at),
                "live": counts_as_live(row, ends.get(row.model_version)),
                "interval": _interval(row.interval_level, row.lower_close, row.upper_close),
                "naive_interval": naive_bounds,
            }
            for row, naive_bounds in zip(rows, naive, strict=True)
        ]
        last = rows[-1] if more else None
        return _encode(body), None if last is None else f"{int(last.target_time.timestamp())}:{last.id}"

    body, next_cursor = await gate.run(request, page)
    next_url = None if next_cursor is None else str(request.url.include_query_params(after=next_cursor))
    return _json(body, next_url)
