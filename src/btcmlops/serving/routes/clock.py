"""The shared sim clock (``/clock``): read by anyone, changed with the control key.

The clock is a row in the price store, so every service (and the trainer) agrees on sim time; a
change is written there and this service's copy replaced at once.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError

from btcmlops.clock import SimClock, last_closed_hour, reset_clock
from btcmlops.serving.deps import AppSettings, ControlKey, Service, Store
from btcmlops.serving.errors import ApiError, documented
from btcmlops.serving.schemas import ClockChange, ClockPublic

router = APIRouter(tags=["clock"])


@router.get("/clock", response_model=ClockPublic, responses=documented(404, 503))
async def clock(service: Service, store: Store) -> ClockPublic:
    """The shared sim clock (read from the store, so every service agrees)."""
    current = await service.store_call(store.read_clock)
    if current is None:
        raise ApiError(404, "no sim clock is set in this store (POST /clock with action 'reset')")
    return clock_public(current)


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
    service.clock = updated
    return clock_public(updated)


def clock_public(clock: SimClock) -> ClockPublic:
    """What ``clock`` says now: sim time, the newest closed and forecastable hours, its state."""
    real_now = datetime.now(UTC)
    now = clock.sim_now(real_now)
    return ClockPublic(
        sim_now=now,
        last_closed_hour=last_closed_hour(now),
        last_forecastable_hour=clock.last_forecastable_hour(real_now),
        speed=clock.speed,
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
