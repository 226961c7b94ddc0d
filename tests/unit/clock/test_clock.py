"""The sim clock: derived sim time, and changes that never make sim time jump."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from btcmlops.clock import MAX_SPEED, SimClock, SpeedGauge, check_speed, last_closed_hour, start_clock
from btcmlops.store import PriceStore
from btcmlops.store.price_store import SERVED_STALE_AFTER_S

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


@pytest.mark.parametrize(
    ("speed", "words"),
    [
        (math.inf, "positive and finite"),
        (math.nan, "positive and finite"),
        (-math.inf, "positive and finite"),
        (1e308, f"at most {MAX_SPEED:g}"),
        (MAX_SPEED + 1, f"at most {MAX_SPEED:g}"),
    ],
)
def test_no_clock_is_made_with_a_speed_it_cannot_run_at(speed: float, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        start_clock(SIM, speed=speed, real_now=REAL)
    with pytest.raises(ValueError, match=words):
        start_clock(SIM, speed=12.0, real_now=REAL).with_speed(speed, REAL)


def test_a_lower_max_speed_is_kept_and_never_raises_the_ceiling() -> None:
    with pytest.raises(ValueError, match="at most 100 sim hours"):
        start_clock(SIM, speed=12.0, real_now=REAL).with_speed(101, REAL, max_speed=100)
    with pytest.raises(ValueError, match="at most 100 sim hours"):
        start_clock(SIM, speed=101, real_now=REAL, max_speed=100)
    with pytest.raises(ValueError, match=f"at most {MAX_SPEED:g}"):
        check_speed(MAX_SPEED * 2, max_speed=MAX_SPEED * 10)
    assert start_clock(SIM, speed=MAX_SPEED, real_now=REAL).speed == MAX_SPEED


@pytest.mark.parametrize("speed", [1e308, math.inf, math.nan, -math.inf])
def test_a_clock_saved_with_a_bad_speed_still_tells_the_time(speed: float) -> None:
    """A row written before speeds were checked: it reads (saturated, then held), it does not raise."""
    hold = datetime(2024, 2, 1, tzinfo=UTC)
    clock = SimClock(SIM, REAL, speed, paused=False, hold_at=hold, hold_reason="waiting")
    later = REAL + timedelta(days=400)
    now = clock.sim_now(later)
    assert now in (hold, SIM)  # run to its hold, or (NaN, a negative speed) not at all
    assert clock.state(later) in ("holding", "running")
    assert clock.last_forecastable_hour(later) <= hold
    unheld = SimClock(SIM, REAL, speed, paused=False)
    assert unheld.sim_now(later) in (datetime.max.replace(tzinfo=UTC), SIM)
    assert last_closed_hour(unheld.sim_now(later)) in (
        datetime(9999, 12, 31, 22, tzinfo=UTC),
        SIM - timedelta(hours=1),
    )


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


def test_the_clock_holds_at_a_months_end_and_runs_on_from_there_when_released() -> None:
    start = datetime(2024, 1, 30, tzinfo=UTC)
    clock = start_clock(start, speed=10.0, real_now=REAL, hold=True)
    assert clock.hold_at == datetime(2024, 2, 1, tzinfo=UTC)
    assert clock.hold_reason == "waiting for the trainer to close 2024-01"
    assert clock.state(REAL + timedelta(seconds=4.7)) == "running"  # 47 sim hours
    later = REAL + timedelta(seconds=60)  # 600 sim hours without the hold
    assert clock.sim_now(later) == datetime(2024, 2, 1, tzinfo=UTC)
    assert clock.state(later) == "holding"
    # January's last hour has closed (the trainer scores it) but its forecast waits for the champion:
    assert last_closed_hour(clock.sim_now(later)) == datetime(2024, 1, 31, 23, tzinfo=UTC)
    assert clock.last_forecastable_hour(later) == datetime(2024, 1, 31, 22, tzinfo=UTC)

    released = clock.with_hold(
        datetime(2024, 3, 1, tzinfo=UTC), "waiting for the trainer to close 2024-02", later
    )
    assert released.sim_now(later) == datetime(2024, 2, 1, tzinfo=UTC)  # no jump: runs on from the hold
    assert released.sim_now(later + timedelta(seconds=1)) == datetime(2024, 2, 1, 10, tzinfo=UTC)
    assert released.last_forecastable_hour(later + timedelta(seconds=1)) == datetime(
        2024, 2, 1, 9, tzinfo=UTC
    )


def test_the_clock_finishes_at_the_end_of_the_data() -> None:
    end = datetime(2024, 1, 2, tzinfo=UTC)
    clock = start_clock(datetime(2024, 1, 1, tzinfo=UTC), speed=10.0, real_now=REAL, end_at=end)
    assert clock.state(REAL + timedelta(seconds=1)) == "running"
    assert clock.sim_now(REAL + timedelta(seconds=100)) == end
    assert clock.state(REAL + timedelta(seconds=100)) == "finished"
    assert clock.pause(REAL + timedelta(seconds=100)).state(REAL + timedelta(seconds=200)) == "finished"
    # Data that ends at a month's end: the clock holds there for the last contest, then finishes.
    last = start_clock(
        datetime(2024, 1, 31, tzinfo=UTC), 10.0, REAL, hold=True, end_at=datetime(2024, 2, 1, tzinfo=UTC)
    )
    assert last.state(REAL + timedelta(seconds=100)) == "holding"
    done = last.with_hold(datetime(2024, 3, 1, tzinfo=UTC), "waiting for the trainer to close 2024-02", REAL)
    assert done.state(REAL + timedelta(seconds=100)) == "finished"


def test_hold_and_end_survive_the_store_and_changes_are_made_under_a_lock(store: PriceStore) -> None:
    clock = start_clock(SIM, 12.0, REAL, hold=True, end_at=datetime(2024, 12, 31, tzinfo=UTC))
    store.write_clock(clock)
    assert store.read_clock() == clock
    paused = store.update_clock(lambda current: current.pause(REAL + timedelta(seconds=1)))
    assert paused is not None
    assert paused.hold_at == clock.hold_at  # a pause keeps the hold, a hold keeps the pause
    held = store.update_clock(lambda current: current.with_hold(None, "", REAL + timedelta(seconds=2)))
    assert held is not None
    assert held.paused
    assert store.read_clock() == held
    assert store.served_versions("m", REAL) == {}
    store.write_served_version("m", 3, REAL, replica="a")
    store.write_served_version("m", 4, REAL, replica="a")
    store.write_served_version("m", 3, REAL, replica="b")  # replicas never overwrite each other
    assert store.served_versions("m", REAL) == {"a": 4, "b": 3}
    assert store.served_versions("m", REAL + timedelta(seconds=SERVED_STALE_AFTER_S + 1)) == {}  # gone
    store.forget_served("m", "b")  # a replica that stops says so
    assert store.served_versions("m", REAL) == {"a": 4}


def test_a_paced_clock_starts_pacing_when_its_first_hold_is_released() -> None:
    start = datetime(2023, 12, 31, tzinfo=UTC)
    clock = start_clock(start, speed=48.0, real_now=REAL, hold=True, paced=True)
    assert clock.forecast_due is None  # no champion yet: nothing to wait for
    held = REAL + timedelta(seconds=10)  # 480 sim h: long at the hold
    assert clock.sim_now(held) == datetime(2024, 1, 1, tzinfo=UTC)
    released = clock.with_hold(datetime(2024, 2, 1, tzinfo=UTC), "waiting for 2024-01", held)
    # The month's last hour is the first whose forecast a champion makes: the clock waits for it.
    assert released.forecast_due == datetime(2023, 12, 31, 23, tzinfo=UTC)
    much_later = held + timedelta(seconds=60)
    assert released.sim_now(much_later) == datetime(2024, 1, 1, 0, 59, 59, tzinfo=UTC)
    assert released.state(much_later) == "holding"
    assert released.holding_for(much_later) == (
        "waiting for the forecast from 2023-12-31 23:00 (the hourly client asks it)"
    )
    assert released.last_forecastable_hour(much_later) == datetime(2023, 12, 31, 23, tzinfo=UTC)


def test_a_paced_clock_runs_one_hour_on_per_forecast_and_never_jumps() -> None:
    clock = start_clock(SIM, speed=48.0, real_now=REAL, paced=True)
    clock = clock.with_hold(None, "", REAL)  # no hold at all: pacing alone
    assert clock.forecast_due is None
    due = datetime(2024, 1, 1, tzinfo=UTC)
    clock = replace(clock, forecast_due=due)
    stalled = REAL + timedelta(seconds=30)
    assert clock.sim_now(stalled) == due + timedelta(hours=2) - timedelta(seconds=1)
    assert clock.with_forecast_made(due - timedelta(hours=1), stalled) is clock  # an old hour moves nothing
    moved = clock.with_forecast_made(due, stalled)
    assert moved.forecast_due == due + timedelta(hours=1)
    assert moved.sim_now(stalled) == clock.sim_now(stalled)  # resumes from where it waited
    # ... and runs at its speed again (24 sim h in half a second), up to the next forecast's deadline.
    later = stalled + timedelta(seconds=0.5)
    assert moved.sim_now(later) == due + timedelta(hours=3) - timedelta(seconds=1)
    assert moved.state(stalled + timedelta(seconds=0.5)) == "holding"


def test_an_unpaced_clock_ignores_forecasts() -> None:
    clock = start_clock(SIM, speed=12.0, real_now=REAL)
    assert clock.with_forecast_made(SIM, REAL) is clock
    assert clock.sim_now(REAL + timedelta(seconds=10)) == SIM + timedelta(hours=120)


def test_a_month_hold_keeps_the_months_last_hour_but_a_pace_wait_does_not() -> None:
    clock = start_clock(
        datetime(2024, 1, 31, 20, tzinfo=UTC), speed=48.0, real_now=REAL, hold=True, paced=True
    )
    at_hold = REAL + timedelta(seconds=5)
    assert clock.sim_now(at_hold) == datetime(2024, 2, 1, tzinfo=UTC)
    assert clock.last_forecastable_hour(at_hold) == datetime(2024, 1, 31, 22, tzinfo=UTC)


def test_the_paced_clock_round_trips_and_an_unchanged_update_writes_nothing(store: PriceStore) -> None:
    clock = start_clock(SIM - timedelta(days=1), speed=48.0, real_now=REAL, hold=True, paced=True)
    store.write_clock(clock.with_hold(datetime(2024, 2, 1, tzinfo=UTC), "next", REAL))
    read = store.read_clock()
    assert read is not None
    assert read.paced
    assert read.forecast_due == datetime(2023, 12, 31, 23, tzinfo=UTC)
    same = store.update_clock(lambda current: current.with_forecast_made(SIM - timedelta(hours=5), REAL))
    assert same == read
    moved = store.update_clock(lambda current: current.with_forecast_made(read.forecast_due, REAL))
    assert moved is not None
    assert store.read_clock() == moved
    assert moved.forecast_due == datetime(2024, 1, 1, tzinfo=UTC)


def test_the_clock_tells_when_it_will_read_a_sim_time_and_never_past_its_limits() -> None:
    real = datetime(2026, 1, 1, tzinfo=UTC)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    clock = start_clock(start, 48.0, real, end_at=datetime(2024, 1, 2, tzinfo=UTC))
    at = clock.real_time_at(start + timedelta(hours=12))
    assert at == real + timedelta(seconds=12 / 48)
    assert clock.sim_now(at) == start + timedelta(hours=12)
    assert clock.real_time_at(start - timedelta(hours=1)) == real  # read already
    assert clock.real_time_at(datetime(2024, 1, 2, 1, tzinfo=UTC)) is None  # past the end
    assert clock.pause(real).real_time_at(start + timedelta(hours=1)) is None
    paced = replace(clock, paced=True, forecast_due=start)  # may run to 01:59:59 until 00:00's forecast
    assert paced.real_time_at(start + timedelta(hours=1)) == real + timedelta(seconds=1 / 48)
    assert paced.real_time_at(start + timedelta(hours=2)) is None


def test_the_real_speed_counts_every_wait_over_its_window_and_starts_anew_after_a_reset() -> None:
    gauge = SpeedGauge(window_s=10.0)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    gauge.observe(0.0, start)
    gauge.observe(0.5, start + timedelta(hours=24))
    assert gauge.speed() is None  # under a tenth of the window seen
    for second in range(1, 21):  # 48 h/s, but held still for the 5 s from second 10 to 15
        sim = start + timedelta(hours=48 * min(second, 10) + 48 * max(second - 15, 0))
        gauge.observe(float(second), sim)
    assert gauge.speed() == pytest.approx(48 * 5 / 10)  # seconds 10..20: 5 s running, 5 s held
    gauge.observe(21.0, start)  # set back: the old readings no longer say anything
    assert gauge.speed() is None
