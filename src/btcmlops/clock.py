"""The sim clock: one shared clock for every service, kept as a row in the store.

``sim_now`` is derived from that row (an anchor in sim time, the real time of the anchor, a speed in
sim hours per real second, paused or not), so every process computes the same sim time and a
restart loses nothing. Changing the clock re-anchors it at the current sim time, so sim time never
jumps when the speed changes or the clock is paused and resumed. These functions are pure: the
store keeps the row and the API changes it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta


@dataclass(frozen=True)
class SimClock:
    """The clock row: sim time at the anchor, real time of the anchor, speed, paused."""

    sim_anchor: datetime
    real_anchor: datetime
    speed: float
    """Sim hours per real second."""
    paused: bool

    def sim_now(self, real_now: datetime) -> datetime:
        """Sim time at real time ``real_now``."""
        if self.paused:
            return self.sim_anchor
        elapsed = (real_now - self.real_anchor).total_seconds()
        return self.sim_anchor + timedelta(hours=elapsed * self.speed)

    def with_speed(self, speed: float, real_now: datetime) -> SimClock:
        """Run at ``speed`` from now on, without moving sim time."""
        if speed <= 0:
            raise ValueError(f"speed must be positive (sim hours per real second), got {speed}")
        return replace(self, sim_anchor=self.sim_now(real_now), real_anchor=real_now, speed=speed)

    def pause(self, real_now: datetime) -> SimClock:
        return replace(self, sim_anchor=self.sim_now(real_now), real_anchor=real_now, paused=True)

    def resume(self, real_now: datetime) -> SimClock:
        return replace(self, sim_anchor=self.sim_now(real_now), real_anchor=real_now, paused=False)


def start_clock(sim_start: datetime, speed: float, real_now: datetime, *, paused: bool = False) -> SimClock:
    """A clock that reads ``sim_start`` at ``real_now`` (also what a reset does)."""
    if speed <= 0:
        raise ValueError(f"speed must be positive (sim hours per real second), got {speed}")
    return SimClock(sim_anchor=sim_start, real_anchor=real_now, speed=speed, paused=paused)


def last_closed_hour(sim_now: datetime) -> datetime:
    """The open time of the newest candle that has closed at ``sim_now``."""
    floored = sim_now.replace(minute=0, second=0, microsecond=0)
    return floored - timedelta(hours=1)
