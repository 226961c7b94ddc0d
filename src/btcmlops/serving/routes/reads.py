"""The long reads (``/candles``, ``/predictions``): paged, capped, and never allowed to starve forecasts.

A page holds at most ``BTCMLOPS_SERVE__MAX_READ_ROWS`` rows, found by the index (keyset paging: the
next page starts after the last row, however deep), and says where the next one starts in a ``Link``
header (``rel="next"``). At most ``BTCMLOPS_SERVE__MAX_CONCURRENT_READS`` run at once: the rest wait a
moment, then get 503 with ``Retry-After``, so ``/predict``, ``/readyz`` and the champion watcher always
find a thread and a connection. A read the store does not answer within
``BTCMLOPS_SERVE__LONG_READ_TIMEOUT_S`` is a 503 like any request that needs the store
(``limits.ReadGate``). A read whose client has gone is dropped before it reaches the database. Each page
is read and written as JSON in a read worker, a process of its own (``serving.read_workers``,
``serving.pages``): the service's interpreter only sends the bytes, so forecasts never wait on a page's
rows. The JSON is written straight from the rows, without a model object per row; the response model
below documents it (the schema is the same whichever process wrote the bytes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from btcmlops.serving.deps import AppSettings, Gate, Service, Workers
from btcmlops.serving.limits import ReadGate
from btcmlops.serving.pages import CandlesPage, PredictionsPage, candles_page, iso, predictions_page
from btcmlops.serving.schemas import CandlePublic, ErrorPublic, LoggedPredictionPublic, UtcDatetime

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


def _json(body: bytes, next_url: str | None) -> Response:
    headers = {"Link": f'<{next_url}>; rel="next"'} if next_url else None
    return Response(body, media_type="application/json", headers=headers)


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
    workers: Workers,
    start: Annotated[UtcDatetime | None, Query(examples=["2024-03-01T00:00:00Z"])] = None,
    end: Annotated[UtcDatetime | None, Query(examples=["2024-03-07T23:00:00Z"])] = None,
    limit: Annotated[
        int, Query(ge=1, description="Rows in this page (at most the service's page size).")
    ] = 5_000,
) -> Response:
    """Candles in [start, end] from the price store, oldest first, one page at a time."""
    limit = _limit(limit, gate)
    page: CandlesPage = await gate.run(
        request, lambda: workers.run(candles_page, start, end, limit), prepare=workers.start
    )
    next_url = None
    if page.last is not None:
        next_url = str(request.url.include_query_params(start=iso(page.last + timedelta(hours=1))))
    return _json(page.body, next_url)


@router.get(
    "/predictions",
    response_model=list[LoggedPredictionPublic],
    responses={**_PAGED, 200: {"headers": _LINK}},
)
async def predictions(
    request: Request,
    gate: Gate,
    workers: Workers,
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

    def build(ends: dict[int, datetime]) -> Awaitable[PredictionsPage]:
        return workers.run(predictions_page, start, end, limit, cursor, ends, settings.model.interval_level)

    async def read() -> PredictionsPage:
        page = await build(service.known_training_ends())
        if page.unknown_versions:  # a version served before this process began: ask MLflow, once
            ends = await asyncio.to_thread(service.training_ends, set(page.unknown_versions))
            if ends:
                page = await build({**service.known_training_ends(), **ends})
        return page

    page: PredictionsPage = await gate.run(request, read, prepare=workers.start)
    next_url = None
    if page.next_cursor is not None:
        next_url = str(request.url.include_query_params(after=page.next_cursor))
    return _json(page.body, next_url)
