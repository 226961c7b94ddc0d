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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

ClockState = Literal["running", "paused", "holding", "finished"]

MAX_SPEED = 10_000.0
"""The fastest a clock may run, in sim hours per real second (two years of data in under two seconds);
``BTCMLOPS_CLOCK__MAX_SPEED`` may lower it."""


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

    def sim_now(self, real_now: datetime) -> datetime:
        """Sim time at real time ``real_now`` (never past the hold or the end)."""
        if self.paused:
            now = self.sim_anchor
        else:
            elapsed = (real_now - self.real_anchor).total_seconds()
            now = _advanced(self.sim_anchor, elapsed * self.speed)
        for limit in (self.hold_at, self.end_at):
            if limit is not None and now > limit:
                now = max(limit, self.sim_anchor)
        return now

    def state(self, real_now: datetime) -> ClockState:
        """``finished``, ``paused``, ``holding`` or ``running``."""
        now = self.sim_now(real_now)
        last_contest_done = self.hold_at is None or self.end_at is None or self.hold_at > self.end_at
        if self.end_at is not None and now >= self.end_at and last_contest_done:
            return "finished"  # the data is over and its last month is closed
        if self.paused:
            return "paused"
        if self.hold_at is not None and now >= self.hold_at:
            return "holding"
        return "running"

    def last_forecastable_hour(self, real_now: datetime) -> datetime:
        """The newest hour one may forecast from: the last closed one, except while holding.

        At a hold the month's last hour has closed, but the forecast from it is the first of the next
        month and belongs to the champion the month's close decides, as in ``btcmlops simulate``.
        """
        closed = last_closed_hour(self.sim_now(real_now))
        if self.state(real_now) == "holding":
            return closed - timedelta(hours=1)
        return closed

    def with_hold(self, hold_at: datetime | None, reason: str, real_now: datetime) -> SimClock:
        """Hold at ``hold_at`` from now on, without moving sim time (a reached hold is released)."""
        return replace(
            self, sim_anchor=self.sim_now(real_now), real_anchor=real_now, hold_at=hold_at, hold_reason=reason
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


def start_clock(
    sim_start: datetime,
    speed: float,
    real_now: datetime,
    *,
    paused: bool = False,
    hold: bool = False,
    end_at: datetime | None = None,
    max_speed: float = MAX_SPEED,
) -> SimClock:
    """A clock that reads ``sim_start`` at ``real_now`` (also what a reset does).

    With ``hold`` it holds at the end of the month it starts in, until the trainer has closed that
    month: nothing runs ahead of a stack that is not ready yet.
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
    )


def month_end(moment: datetime) -> datetime:
    """The first instant after the month ``moment`` falls in (UTC)."""
    start = moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (start + timedelta(days=32)).replace(day=1)


def last_closed_hour(sim_now: datetime) -> datetime:
    """The open time of the newest candle that has closed at ``sim_now``."""
    floored = sim_now.replace(minute=0, second=0, microsecond=0)
    return floored - timedelta(hours=1)


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
