"""The sim clock: derived sim time, and changes that never make sim time jump."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from btcmlops.clock import last_closed_hour, start_clock
from btcmlops.store import PriceStore

REAL = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SIM = datetime(2024, 1, 1, tzinfo=UTC)


def test_sim_time_runs_at_speed() -> None:
    clock = start_clock(SIM, speed=12.0, real_now=REAL)
    assert clock.sim_now(REAL) == SIM
    assert clock.sim_now(REAL + timedelta(seconds=10)) == SIM + timedelta(hours=120)


def test_speed_change_pause_and_resume_keep_sim_time_continuous() -> None:
    clock = start_clock(SIM, speed=10.0, real_now=REAL)
    t1 = REAL + timedelta(seconds=3)
    faster = clock.with_speed(100.0, t1)
    assert faster.sim_now(t1) == clock.sim_now(t1) == SIM + timedelta(hours=30)
    t2 = t1 + timedelta(seconds=1)
    paused = faster.pause(t2)
    assert paused.sim_now(t2 + timedelta(hours=5)) == SIM + timedelta(hours=130)
    resumed = paused.resume(t2 + timedelta(hours=5))
    assert resumed.sim_now(t2 + timedelta(hours=5, seconds=1)) == SIM + timedelta(hours=230)


def test_speed_must_be_positive() -> None:
    with pytest.raises(ValueError, match="speed must be positive"):
        start_clock(SIM, speed=12.0, real_now=REAL).with_speed(0, REAL)


def test_last_closed_hour() -> None:
    assert last_closed_hour(datetime(2024, 3, 5, 14, 37, tzinfo=UTC)) == datetime(2024, 3, 5, 13, tzinfo=UTC)
    assert last_closed_hour(datetime(2024, 3, 5, 14, 0, tzinfo=UTC)) == datetime(2024, 3, 5, 13, tzinfo=UTC)


def test_the_clock_row_round_trips_on_both_backends(store: PriceStore) -> None:
    assert store.read_clock() is None
    clock = start_clock(SIM, speed=12.5, real_now=REAL + timedelta(microseconds=123_456))
    store.write_clock(clock)
    assert store.read_clock() == clock
    paused = clock.pause(REAL + timedelta(seconds=7))
    store.write_clock(paused)
    assert store.read_clock() == paused
