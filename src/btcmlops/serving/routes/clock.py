"""The shared sim clock (``/clock``): read by anyone, changed with the control key.

The clock is a row in the price store, so every service (and the trainer) agrees on sim time; a
change is written there and this service's copy replaced at once.

The hour is pushed down the live chain, not polled for: the feed tells the service of each candle it
writes (``POST /clock/hour-closed``), and the hourly client's ``GET /clock?after=<hour>&wait_s=`` is
answered as soon as the next hour may be asked and its candle is in memory.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.exceptions import RequestValidationError

from btcmlops.clock import HOUR, SimClock, last_closed_hour, reset_clock
from btcmlops.serving.deps import AppSettings, ControlKey, Service, Store
from btcmlops.serving.errors import ApiError, documented
from btcmlops.serving.schemas import ClockChange, ClockPublic, HourClosed

MAX_WAIT_S = 30.0
"""The longest a ``GET /clock?after=`` waits: a client asks again after it (and a proxy keeps the line)."""

router = APIRouter(tags=["clock"])


@router.get("/clock", response_model=ClockPublic, responses=documented(404, 503))
async def clock(
    service: Service,
    store: Store,
    after: Annotated[
        datetime | None,
        Query(
            description=(
                "With wait_s: answer as soon as the first whole hour after this moment may be asked and its "
                "candle is in this service's memory (then POST /predict for it is answered at once), "
                "instead of now; the hourly client sends the last hour it asked."
            ),
            examples=["2024-03-05T13:00:00Z"],
        ),
    ] = None,
    wait_s: Annotated[
        float,
        Query(ge=0, le=MAX_WAIT_S, description="Longest wait for the hour after `after`, in seconds."),
    ] = 0.0,
) -> ClockPublic:
    """The shared sim clock (read from the store, so every service agrees); with ``after`` and
    ``wait_s``, once the next hour may be asked (a long poll: the hourly client waits here)."""
    hour = _next_hour(after) if wait_s > 0 else None
    if (
        hour is not None
        and service.clock is not None  # no clock: no live replay to wait on
        and await service.until_answerable(hour, wait_s)
        and service.clock is not None
    ):
        return _observed(service, service.clock)  # just read, with the candle: no second read
    current = await service.store_call(store.read_clock)
    if current is None:
        raise ApiError(404, "no sim clock is set in this store (POST /clock with action 'reset')")
    return _observed(service, current)


@router.post(
    "/clock/hour-closed",
    status_code=204,
    response_class=Response,
    dependencies=[ControlKey],
    responses=documented(401, 403, 503),
)
async def hour_closed(notice: HourClosed, service: Service) -> None:
    """The feed wrote the candle of ``hour``: the service reads the store now, not a poll later, and
    answers the clients waiting for that hour (needs the X-API-Key header)."""
    await service.within_store_timeout(service.hour_closed(notice.hour))


def _next_hour(after: datetime | None) -> datetime | None:
    """The first whole hour after ``after`` (naive: UTC); None without one, or past the calendar's end."""
    if after is None:
        return None
    try:
        moment = (after if after.tzinfo is not None else after.replace(tzinfo=UTC)).astimezone(UTC)
    except (OverflowError, ValueError):  # an offset that leaves the calendar
        return None
    if moment >= datetime.max.replace(tzinfo=UTC) - 3 * HOUR:  # the wait looks up to two hours on
        return None
    return moment.replace(minute=0, second=0, microsecond=0) + HOUR


def _observed(service: Service, current: SimClock) -> ClockPublic:
    service.observe_clock(current)
    return clock_public(current, achieved_speed=service.speed_gauge.speed())


@router.post(
    "/clock",
    response_model=ClockPublic,
    dependencies=[ControlKey],
    responses=documented(400, 401, 403, 409, 503),
)
def change_clock(change: ClockChange, service: Service, store: Store, settings: AppSettings) -> ClockPublic:
    """Set the speed, pause, resume or reset the sim clock (needs the X-API-Key header)."""
    max_speed = settings.clock.max_speed
    if change.speed is not None and change.speed > max_speed:
        raise RequestValidationError(
            [
                {
                    "type": "less_than_equal",
                    "loc": ("body", "speed"),
                    "msg": f"speed must be at most {max_speed:g} (BTCMLOPS_CLOCK__MAX_SPEED)",
                    "input": change.speed,
                }
            ]
        )
    now = datetime.now(UTC)
    if change.action == "reset":
        current = store.read_clock()
        updated: SimClock | None = reset_clock(
            settings.clock,
            now,
            start=change.start,
            speed=change.speed,
            end_at=current.end_at if current else None,
        )
        assert updated is not None
        store.write_clock(updated)
    else:
        if change.action == "speed" and change.speed is None:
            raise ApiError(422, "action 'speed' needs a positive 'speed'")
        updated = store.update_clock(lambda current: _changed(current, change, now, max_speed))
        if updated is None:
            raise ApiError(409, "no sim clock yet: reset it first")
    service.clock_written(updated)
    return clock_public(updated, achieved_speed=service.speed_gauge.speed())


def clock_public(clock: SimClock, *, achieved_speed: float | None = None) -> ClockPublic:
    """What ``clock`` says now: sim time, the newest closed and forecastable hours, its state, and the
    real speed the service measured (``ServiceState.speed_gauge``)."""
    real_now = datetime.now(UTC)
    now = clock.sim_now(real_now)
    return ClockPublic(
        sim_now=now,
        last_closed_hour=last_closed_hour(now),
        last_forecastable_hour=clock.last_forecastable_hour(real_now),
        speed=clock.speed,
        achieved_speed=achieved_speed,
        paused=clock.paused,
        state=clock.state(real_now),
        holding_for=clock.holding_for(real_now),
        forecast_due=clock.forecast_due if clock.paced else None,
        hold_at=clock.hold_at,
        end_at=clock.end_at,
    )


def _changed(clock: SimClock, change: ClockChange, now: datetime, max_speed: float) -> SimClock:
    if change.action == "speed":
        assert change.speed is not None
        return clock.with_speed(change.speed, now, max_speed=max_speed)
    return clock.pause(now) if change.action == "pause" else clock.resume(now)
