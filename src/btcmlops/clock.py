"""The sim clock: one shared clock for every service, kept as a row in the store.

``sim_now`` is derived from that row (an anchor in sim time, the real time of the anchor, a speed in
sim hours per real second, paused or not), so every process computes the same sim time and a
restart loses nothing. Changing the clock re-anchors it at the current sim time, so sim time never
jumps when the speed changes or the clock is paused and resumed. These functions are pure: the
store keeps the row and the API changes it.

The clock also **holds**: sim time never passes ``hold_at``, the end of the month the trainer has not
closed yet, so the live stack keeps the replay's schedule at any speed. While it holds, the month's
last hour has closed (the feed writes it, the trainer scores it) but no forecast may be made from it
yet: that forecast belongs to the champion the close decides. ``end_at`` is the close of the data's
last hour: there the replay is finished.

A **paced** clock also waits for the forecasts: ``forecast_due`` is the oldest hour whose forecast has
not been made yet, and sim time stays short of the close of the hour that forecast is for, so every
hour's forecast is made live (before its target hour closes) however fast the clock runs. The
inference service moves it on as it answers; the trainer starts it when it releases the first hold.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from btcmlops.speed import MAX_SPEED

if TYPE_CHECKING:
    from btcmlops.settings import ClockSettings

ClockState = Literal["running", "paused", "holding", "finished"]

HOUR = timedelta(hours=1)
_LIVE_MARGIN = timedelta(seconds=1)
"""How far short of the target hour's close a paced clock stops: a forecast made then is still live."""


@dataclass(frozen=True)
class SimClock:
    """The clock row: sim time at the anchor, real time of the anchor, speed, paused."""

    sim_anchor: datetime
    real_anchor: datetime
    speed: float
    """Sim hours per real second."""
    paused: bool
    hold_at: datetime | None = None
    """Sim time the clock may not pass until the trainer moves it on (None: never holds)."""
    hold_reason: str = ""
    """What the clock waits for at ``hold_at``, in words."""
    end_at: datetime | None = None
    """The close of the data's last hour: the replay is finished there."""
    paced: bool = False
    """Wait for each hour's forecast (``forecast_due``) as well as for the contest."""
    forecast_due: datetime | None = None
    """The oldest hour whose forecast is not made yet (None: not pacing yet, no champion serves)."""

    @property
    def pace_at(self) -> datetime | None:
        """Sim time a paced clock may not pass until the forecast from ``forecast_due`` is made."""
        if not self.paced or self.forecast_due is None:
            return None
        return self.forecast_due + 2 * HOUR - _LIVE_MARGIN

    def sim_now(self, real_now: datetime) -> datetime:
        """Sim time at real time ``real_now`` (never past the hold, the pace or the end)."""
        if self.paused:
            now = self.sim_anchor
        else:
            elapsed = (real_now - self.real_anchor).total_seconds()
            now = _advanced(self.sim_anchor, elapsed * self.speed)
        for limit in self._limits():
            if limit is not None and now > limit:
                now = max(limit, self.sim_anchor)
        return now

    def real_time_at(self, sim: datetime) -> datetime | None:
        """When this clock reads ``sim``, as it stands (None: not without a change: paused, or ``sim``
        is past its hold, pace or end).

        Lets a process wake when an hour closes instead of looking every few milliseconds; a change of
        the row (a forecast made, a hold moved, a new speed) is told or read apart.
        """
        if sim <= self.sim_anchor:
            return self.real_anchor
        if self.paused or any(limit is not None and sim > limit for limit in self._limits()):
            return None
        try:
            return self.real_anchor + timedelta(seconds=(sim - self.sim_anchor) / HOUR / self.speed)
        except OverflowError:
            return None

    def _limits(self) -> tuple[datetime | None, ...]:
        return (self.hold_at, self.pace_at, self.end_at)

    def _at_hold(self, now: datetime) -> bool:
        return self.hold_at is not None and now >= self.hold_at

    def _at_pace(self, now: datetime) -> bool:
        pace_at = self.pace_at
        return pace_at is not None and now >= pace_at

    def state(self, real_now: datetime) -> ClockState:
        """``finished``, ``paused``, ``holding`` or ``running``."""
        now = self.sim_now(real_now)
        last_contest_done = self.hold_at is None or self.end_at is None or self.hold_at > self.end_at
        if self.end_at is not None and now >= self.end_at and last_contest_done:
            return "finished"  # the data is over and its last month is closed
        if self.paused:
            return "paused"
        if self._at_hold(now) or self._at_pace(now):
            return "holding"
        return "running"

    def holding_for(self, real_now: datetime) -> str | None:
        """What a holding clock waits for, in words (None when it is not holding)."""
        if self.state(real_now) != "holding":
            return None
        now = self.sim_now(real_now)
        if self._at_hold(now):
            return self.hold_reason or "holding"
        assert self.forecast_due is not None
        return f"waiting for the forecast from {self.forecast_due:%Y-%m-%d %H:00} (the hourly client asks it)"

    def last_forecastable_hour(self, real_now: datetime) -> datetime:
        """The newest hour one may forecast from: the last closed one, except while holding.

        At a hold the month's last hour has closed, but the forecast from it is the first of the next
        month and belongs to the champion the month's close decides, as in ``btcmlops simulate``.
        """
        now = self.sim_now(real_now)
        closed = last_closed_hour(now)
        if self.state(real_now) == "holding" and self._at_hold(now):
            return closed - HOUR
        return closed

    def with_hold(self, hold_at: datetime | None, reason: str, real_now: datetime) -> SimClock:
        """Hold at ``hold_at`` from now on, without moving sim time (a reached hold is released).

        A paced clock starts pacing when its first hold is released: the month's last hour is the
        first whose forecast a champion makes, and from then on no hour goes without one.
        """
        due = self.forecast_due
        if (
            self.paced
            and due is None
            and self.hold_at is not None
            and (hold_at is None or hold_at > self.hold_at)
        ):
            due = self.hold_at - HOUR
        return replace(
            self,
            sim_anchor=self.sim_now(real_now),
            real_anchor=real_now,
            hold_at=hold_at,
            hold_reason=reason,
            forecast_due=due,
        )

    def with_forecast_made(self, hour: datetime, real_now: datetime) -> SimClock:
        """The forecast from ``hour`` is made: a paced clock may run to the next hour's deadline.

        Unchanged (the same object) when it moves nothing: not paced, or an hour already passed.
        """
        if not self.paced or self.forecast_due is None or hour < self.forecast_due:
            return self
        return replace(
            self, sim_anchor=self.sim_now(real_now), real_anchor=real_now, forecast_due=hour + HOUR
        )

    def with_end(self, end_at: datetime | None) -> SimClock:
        """Finish the replay at ``end_at``."""
        return replace(self, end_at=end_at)

    def with_speed(self, speed: float, real_now: datetime, *, max_speed: float = MAX_SPEED) -> SimClock:
        """Run at ``speed`` from now on, without moving sim time."""
        check_speed(speed, max_speed)
        return replace(self, sim_anchor=self.sim_now(real_now), real_anchor=real_now, speed=speed)

    def pause(self, real_now: datetime) -> SimClock:
        return replace(self, sim_anchor=self.sim_now(real_now), real_anchor=real_now, paused=True)

    def resume(self, real_now: datetime) -> SimClock:
        return replace(self, sim_anchor=self.sim_now(real_now), real_anchor=real_now, paused=False)


class SpeedGauge:
    """The clock's real speed: sim hours passed per real second over the last ``window_s`` of real time.

    Fed with what the clock read at given real moments (``observe``), by whoever reads it often (the
    inference service, on every read of the row and every forecast made): unlike the set speed it counts
    every wait, for a contest or a forecast, so the two side by side say whether the stack keeps up.
    """

    def __init__(self, window_s: float = 10.0) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, datetime]] = deque()

    def observe(self, real_s: float, sim_now: datetime) -> None:
        """The clock read ``sim_now`` at ``real_s`` (a monotonic second); a clock set back starts anew."""
        samples = self._samples
        if samples and (sim_now < samples[-1][1] or real_s < samples[-1][0]):
            samples.clear()
        samples.append((real_s, sim_now))
        # keep one reading at or before the window's start, so the window is spanned whole
        while len(samples) > 2 and samples[1][0] <= real_s - self.window_s:
            samples.popleft()

    def speed(self) -> float | None:
        """Sim hours per real second from the window's first reading to the newest (None: under a tenth
        of the window observed yet)."""
        if len(self._samples) < 2:
            return None
        (first_s, first_sim), (last_s, last_sim) = self._samples[0], self._samples[-1]
        span_s = last_s - first_s
        if span_s < self.window_s / 10:
            return None
        return (last_sim - first_sim) / HOUR / span_s


def start_clock(
    sim_start: datetime,
    speed: float,
    real_now: datetime,
    *,
    paused: bool = False,
    hold: bool = False,
    end_at: datetime | None = None,
    paced: bool = False,
    max_speed: float = MAX_SPEED,
) -> SimClock:
    """A clock that reads ``sim_start`` at ``real_now`` (also what a reset does).

    With ``hold`` it holds at the end of the month it starts in, until the trainer has closed that
    month: nothing runs ahead of a stack that is not ready yet. A ``paced`` clock also waits for every
    hour's forecast once its first hold is released (see ``SimClock.with_hold``).
    """
    check_speed(speed, max_speed)
    hold_at, reason = None, ""
    if hold:
        hold_at = month_end(sim_start)
        reason = f"waiting for the trainer to close {sim_start:%Y-%m}"
    return SimClock(
        sim_anchor=sim_start,
        real_anchor=real_now,
        speed=speed,
        paused=paused,
        hold_at=hold_at,
        hold_reason=reason,
        end_at=end_at,
        paced=paced,
    )


def reset_clock(
    settings: ClockSettings,
    real_now: datetime,
    *,
    start: datetime | None = None,
    speed: float | None = None,
    paused: bool = False,
    end_at: datetime | None = None,
) -> SimClock:
    """The clock a reset writes: at ``start`` (default: the setting), holding for its month's contest."""
    return start_clock(
        start or settings.start,
        speed or settings.speed,
        real_now,
        paused=paused,
        hold=True,
        end_at=end_at,
        paced=settings.paced,
        max_speed=settings.max_speed,
    )


def month_end(moment: datetime) -> datetime:
    """The first instant after the month ``moment`` falls in (UTC)."""
    start = moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (start + timedelta(days=32)).replace(day=1)


def last_closed_hour(sim_now: datetime) -> datetime:
    """The open time of the newest candle that has closed at ``sim_now``."""
    floored = sim_now.replace(minute=0, second=0, microsecond=0)
    return floored - HOUR


def check_speed(speed: float, max_speed: float = MAX_SPEED) -> None:
    """Refuse a speed no clock may run at: not a positive finite number, or above ``max_speed``.

    Checked before a clock is written, so no process ever reads a clock that cannot tell the time.
    """
    if not (math.isfinite(speed) and speed > 0):
        raise ValueError(f"speed must be positive and finite (sim hours per real second), got {speed}")
    if speed > min(max_speed, MAX_SPEED):
        raise ValueError(
            f"speed must be at most {min(max_speed, MAX_SPEED):g} sim hours per real second, got {speed:g}"
        )


def _advanced(anchor: datetime, hours: float) -> datetime:
    """``anchor`` plus ``hours``, saturated at the end of time instead of failing.

    A clock written before speeds were checked (1e308, inf, NaN) must still read: as far as it can go
    (its hold or end then stops it) rather than an error in every process that looks at it.
    """
    try:
        return anchor + timedelta(hours=hours)
    except (OverflowError, ValueError):
        return datetime.max.replace(tzinfo=UTC) if hours > 0 else anchor
