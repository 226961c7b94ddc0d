"""The feed and the trainer, stepped through sim time by hand: same decisions as the replay."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from btcmlops.calendar import Month
from btcmlops.candles import open_time_ns
from btcmlops.clock import last_closed_hour, month_end, start_clock
from btcmlops.contest.contest import Contest
from btcmlops.registry import ModelRegistry, embedded_artifact_location, embedded_tracking_uri
from btcmlops.replay import run_replay
from btcmlops.services.feed import MarketFeed, candles_due
from btcmlops.services.trainer import (
    LEASE_NAME,
    LeaseLostError,
    TrainerService,
    due_month,
    last_closed_month,
)
from btcmlops.settings import Settings, StoreSettings, TrainerSettings
from btcmlops.store import PriceStore
from factories import make_candles, write_project_csv
from services import wait_until

REAL = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CANDLES = make_candles(
    "2021-01-01", "2021-05-31 23:00", ar=[("2021-01-01", -0.8), ("2021-03-01", 0.8)], noise=0.003
)
SETTINGS = {"contest": {"first_train_months": 2}, "model": {"num_boost_round": 30, "min_data_in_leaf": 20}}


def _store(path: Path) -> PriceStore:
    store = PriceStore(f"sqlite:///{path}")
    store.migrate()
    store.write_clock(start_clock(datetime(2021, 1, 1, tzinfo=UTC), speed=1.0, real_now=REAL))  # 1 sim h / s
    return store


def test_last_closed_month() -> None:
    assert last_closed_month(datetime(2021, 3, 1, 0, 0, tzinfo=UTC)) == last_closed_month(
        datetime(2021, 3, 31, 23, 59, tzinfo=UTC)
    )
    assert str(last_closed_month(datetime(2021, 3, 1, 0, 0, tzinfo=UTC))) == "2021-02"
    assert str(last_closed_month(datetime(2021, 3, 1, 1, 0, tzinfo=UTC))) == "2021-02"
    assert str(last_closed_month(datetime(2021, 2, 28, 23, 30, tzinfo=UTC))) == "2021-01"


def test_a_month_is_due_once_it_has_ended_in_sim_time_and_is_whole_in_the_store() -> None:
    def due(sim_now: str, newest_stored: str) -> str:
        month = due_month(pd.Timestamp(sim_now).to_pydatetime(), pd.Timestamp(newest_stored).to_pydatetime())
        return str(month)

    assert due("2021-03-01 05:00Z", "2021-02-28 22:00Z") == "2021-01"  # the feed has not written 23:00 yet
    assert due("2021-03-01 05:00Z", "2021-02-28 23:00Z") == "2021-02"
    assert due("2021-03-01 05:00Z", "2021-03-01 02:00Z") == "2021-02"  # a gap in the data at month end
    assert due("2021-03-31 23:30Z", "2021-03-31 22:00Z") == "2021-02"  # March has not closed in sim time


def test_the_feed_writes_only_closed_hours_and_resumes(tmp_path: Path) -> None:
    store = _store(tmp_path / "prices.db")
    feed = MarketFeed(store, CANDLES)
    assert feed.step(REAL + timedelta(seconds=30.5)) == 30  # sim 01-02 06:30: 00:00 (01-01)..05:00 closed
    assert store.latest_candle_time() == datetime(2021, 1, 2, 5, tzinfo=UTC)
    assert store.latest_candle_time() == last_closed_hour(datetime(2021, 1, 2, 6, 30, tzinfo=UTC))
    assert feed.step(REAL + timedelta(seconds=30.9)) == 0
    restarted = MarketFeed(store, CANDLES)  # a new process: resumes after the newest stored candle
    assert restarted.step(REAL + timedelta(seconds=48)) == 18
    stored = store.read_candles()
    assert stored["open_time"].is_unique
    assert stored["open_time"].iloc[-1] == pd.Timestamp("2021-01-02 23:00", tz="UTC")
    store.dispose()


def test_the_feeds_due_candles_from_its_open_times_are_those_of_the_frame() -> None:
    """The open times the feed keeps (``open_time_ns``) pick exactly the candles the frame's own times do,
    at each bound (an hour before the first, on a candle, between two, after the last)."""
    candles = make_candles("2024-01-01", "2024-01-03 23:00")
    times = open_time_ns(candles["open_time"])
    first = candles["open_time"].iloc[0]
    for after in (None, first - pd.Timedelta(hours=1), first, first + pd.Timedelta(hours=5)):
        for hours in (-1, 0, 7, 30, 100):
            closed = (first + pd.Timedelta(hours=hours, minutes=30 * (hours % 2))).to_pydatetime()
            due = candles_due(candles, after, closed, times)
            expected = candles.loc[
                (candles["open_time"] > (after if after is not None else first - pd.Timedelta(days=1)))
                & (candles["open_time"] <= closed)
            ]
            pd.testing.assert_frame_equal(due, expected)
            pd.testing.assert_frame_equal(candles_due(candles, after, closed), expected)


def test_the_feed_tells_of_each_write_and_wakes_when_the_next_hour_closes(tmp_path: Path) -> None:
    store = _store(tmp_path / "prices.db")  # 1 sim h/s from 2021-01-01 00:00
    told: list[datetime] = []
    feed = MarketFeed(store, CANDLES, interval_s=5.0, on_written=told.append)
    assert feed.step(REAL + timedelta(seconds=2.25)) == 2  # 00:00 and 01:00 closed
    assert told == [datetime(2021, 1, 1, 1, tzinfo=UTC)]  # the newest hour written, once per write
    # 02:00 closes at 03:00 sim, 0.75 s on: the feed sleeps that long, not its 5 s interval
    assert feed.next_wait_s == pytest.approx(0.75, abs=0.001)
    assert feed.step(REAL + timedelta(seconds=2.5)) == 0
    assert told == [datetime(2021, 1, 1, 1, tzinfo=UTC)]  # nothing written, nothing told
    store.update_clock(lambda clock: clock.pause(REAL + timedelta(seconds=2.5)))
    assert feed.step(REAL + timedelta(seconds=3)) == 0
    assert feed.next_wait_s == 5.0  # a paused clock closes nothing: look again after the interval
    store.dispose()


def test_a_feed_that_has_written_its_last_candle_stops_reading_the_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the replay's last hour the stack stays up: the feed sleeps a second between rounds and reads
    nothing, where it read the clock row every 10 ms before (nothing can be due again)."""
    store = _store(tmp_path / "prices.db")  # 1 sim h/s from 2021-01-01 00:00
    feed = MarketFeed(store, CANDLES)
    last = CANDLES["open_time"].iloc[-1]
    hours = int((last - CANDLES["open_time"].iloc[0]) / pd.Timedelta(hours=1))
    assert feed.step(REAL + timedelta(seconds=hours)) == hours  # every hour but the last has closed
    assert feed.next_wait_s <= 0.01  # the last closes within the interval: the feed looks again
    assert feed.step(REAL + timedelta(seconds=hours + 2)) == 1
    assert store.latest_candle_time() == last
    reads: list[None] = []
    monkeypatch.setattr(store, "read_clock", lambda: reads.append(None))
    assert feed.step(REAL + timedelta(seconds=hours + 3)) == 0
    assert feed.next_wait_s == 1.0
    assert reads == []
    store.dispose()


@pytest.mark.slow  # a replay of five months, then the trainer through them (8-12 s): make test
def test_the_live_trainer_decides_what_the_replay_decides(tmp_path: Path, mlflow_cache: Path) -> None:
    data = tmp_path / "candles.csv"
    write_project_csv(CANDLES, str(data))
    replay = run_replay(Settings(home=tmp_path / "replay", **SETTINGS), data, tmp_path / "replay" / "out")

    settings = Settings(home=tmp_path / "live", **SETTINGS)
    store = _store(tmp_path / "live.db")
    registry = ModelRegistry(
        embedded_tracking_uri(tmp_path / "mlflow", mlflow_cache),
        settings.mlflow.experiment,
        settings.mlflow.registered_model,
        artifact_location=embedded_artifact_location(tmp_path / "mlflow"),
    )
    feed = MarketFeed(store, pd.read_csv(data).pipe(_canonical))
    trainer = TrainerService(Contest(settings.model, settings.contest, registry, store, store), store)
    hours = int((CANDLES["open_time"].iloc[-1] - CANDLES["open_time"].iloc[0]) / pd.Timedelta(hours=1)) + 2
    outcomes = []
    for step in [*range(0, hours, 24 * 9), hours]:  # a look every nine sim days: it catches up, in order
        now = REAL + timedelta(seconds=step)
        outcomes += trainer.step(now)  # woken before the feed: the clock is ahead of the store
        feed.step(now)
    outcomes += trainer.step(now)

    live = [
        (str(o.month), c.champion_version, c.challenger_version, c.decision.promote)
        for o in outcomes
        if (c := o.contest) is not None
    ]
    replayed = [
        (d["month"], d["champion_version"], d["challenger_version"], d["promoted"])
        for d in replay.summary["decisions"]
    ]
    assert live == replayed
    assert any(promoted for *_, promoted in live)
    trained = [(t.version, t.trained_through, t.train_rows, t.data_hash) for o in outcomes for t in o.trained]
    expected = [
        (t["version"], t["trained_through"], t["train_rows"], t["data_hash"])
        for t in replay.summary["trainings"]
    ]
    assert trained[: len(expected)] == expected  # the live trainer also trains a challenger after May

    restarted = TrainerService(Contest(settings.model, settings.contest, registry, store, store), store)
    assert restarted.step(REAL + timedelta(seconds=hours + 24)) == []  # nothing left to close
    assert len(registry.versions()) == len(trained)
    store.dispose()


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    frame["open_time"] = pd.to_datetime(frame["open_time"], utc=True).astype("datetime64[ns, UTC]")
    return frame


class _IdleContest:
    """A contest with nothing due, so the trainers' lease is all that is tested here."""

    class changes:  # noqa: N801 - mimics the attribute of ``Contest``
        @staticmethod
        def sync_with_registry() -> None:
            return None

    def reconcile(self) -> list[object]:
        return []

    def first_open_month(self, first: object) -> object:
        from btcmlops.calendar import Month

        return Month(2099, 1)


def test_one_trainer_at_a_time_and_a_dead_trainers_lease_expires(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = _store(tmp_path / "lease.db")
    store.upsert_candles(CANDLES.iloc[:30])
    ttl = TrainerSettings(interval_s=0.05, lease_ttl_s=0.6)
    # A trainer that died (kill -9) holding the lease: it never renews and never releases it.
    store.journal.acquire_lease(LEASE_NAME, "dead-host:1", now=datetime.now(UTC), ttl_s=ttl.lease_ttl_s)
    first = TrainerService(_IdleContest(), store, ttl, holder="host:1")  # type: ignore[arg-type]
    second = TrainerService(_IdleContest(), store, ttl, holder="host:2")  # type: ignore[arg-type]
    stop_first, stop_second = threading.Event(), threading.Event()
    caplog.set_level(logging.INFO, logger="btcmlops.services.trainer")
    runner = threading.Thread(target=first.run, args=(stop_first,))
    runner.start()
    wait_until(
        lambda: _holder(store) == "host:1",
        timeout_s=10,
        what="host:1's lease",
        on_timeout=lambda: caplog.text,
    )
    assert "another trainer (dead-host:1) holds the lease" in caplog.text

    waiting = threading.Thread(target=second.run, args=(stop_second,))
    waiting.start()
    time.sleep(3 * ttl.lease_ttl_s)  # the first renews: the second keeps waiting, and says why
    assert _holder(store) == "host:1"
    assert "another trainer (host:1) holds the lease" in caplog.text
    stop_first.set()  # a clean stop gives the lease up at once
    runner.join(timeout=10)
    wait_until(
        lambda: _holder(store) == "host:2",
        timeout_s=10,
        what="host:2's lease",
        on_timeout=lambda: caplog.text,
    )
    stop_second.set()
    waiting.join(timeout=10)
    store.dispose()


def _holder(store: PriceStore) -> str | None:
    lease = store.journal.lease(LEASE_NAME)
    return None if lease is None else lease.holder


def test_a_trainer_that_cannot_be_sure_of_its_lease_takes_no_registry_step(tmp_path: Path) -> None:
    store = _store(tmp_path / "fence.db")
    trainer = TrainerService(_IdleContest(), store, TrainerSettings(lease_ttl_s=0.3), holder="host:1")  # type: ignore[arg-type]
    with pytest.raises(LeaseLostError, match="no longer surely holds its lease"):
        trainer.fence("registry.champion_alias")  # never took the lease
    store.journal.acquire_lease(LEASE_NAME, "host:1", now=datetime.now(UTC), ttl_s=0.3)
    fresh = TrainerService(_IdleContest(), store, TrainerSettings(lease_ttl_s=0.3), holder="host:1")  # type: ignore[arg-type]
    fresh.step(datetime.now(UTC))  # a round reads when its lease ends
    fresh.fence("registry.champion_alias")  # held: goes on
    time.sleep(0.4)  # stalled past the expiry (a frozen process): the next step is refused
    with pytest.raises(LeaseLostError):
        fresh.fence("registry.champion_alias")
    store.dispose()


def test_the_clock_waits_for_each_close_and_for_the_service_to_serve_its_champion(
    tmp_path: Path, mlflow_cache: Path
) -> None:
    settings = Settings(home=tmp_path / "live", **SETTINGS)
    store = PriceStore(f"sqlite:///{tmp_path / 'held.db'}")
    store.migrate()
    end = (CANDLES["open_time"].iloc[-1] + pd.Timedelta(hours=1)).to_pydatetime()
    store.write_clock(start_clock(datetime(2021, 1, 1, tzinfo=UTC), 1.0, REAL, hold=True, end_at=end))
    registry = ModelRegistry(
        embedded_tracking_uri(tmp_path / "mlflow", mlflow_cache),
        settings.mlflow.experiment,
        settings.mlflow.registered_model,
        artifact_location=embedded_artifact_location(tmp_path / "mlflow"),
    )
    contest = Contest(settings.model, settings.contest, registry, store, store)
    now = REAL
    feed = MarketFeed(store, CANDLES)
    trainer = TrainerService(contest, store, wall_clock=lambda: now)  # time injected, not slept
    waited_for: list[str] = []
    serving: int | None = None
    for _ in range(400):
        now += timedelta(seconds=24)  # a day of sim time per step, unless the clock holds
        feed.step(now)
        trainer.step(now)
        clock = store.read_clock()
        assert clock is not None
        closed = [e.month for e in store.journal.closed_months(contest.model_name)]
        first_open = Month.parse(closed[-1]).next() if closed else Month(2021, 1)
        assert clock.sim_now(now) <= month_end(first_open.start.to_pydatetime())  # never past an open month
        if clock.state(now) == "holding" and "inference replica" in clock.hold_reason:
            waited_for.append(clock.hold_reason)
            champion = contest.champion_version()
            assert champion not in store.served_versions(contest.model_name, now).values()
            serving = champion  # the service swaps
        # Two replicas report what they serve, as each does every few seconds; one that died long ago
        # (its last report stale) is not waited for.
        for replica in ("api-1", "api-2"):
            store.write_served_version(contest.model_name, serving, now, replica=replica)
        store.write_served_version(contest.model_name, 99, now - timedelta(minutes=5), replica="gone")
        if clock.state(now) == "finished":
            break
    assert clock.state(now) == "finished", (clock, now, closed)
    assert clock.sim_now(now) == end
    assert closed == ["2021-01", "2021-02", "2021-03", "2021-04", "2021-05"]
    assert any("serve v1" in reason for reason in waited_for)  # v1 waited for before February ran
    assert any("serve v2" in reason for reason in waited_for)  # and April's winner before May
    # The end of the data as the replay treats it: May's contest is the last, and no challenger is
    # trained after it (there is no June to score it on).
    trained_through = sorted(version.window.trained_through for version in registry.versions())
    assert trained_through[-1] == "2021-04", trained_through
    store.dispose()


class _CountingContest(_IdleContest):
    """Nothing due; counts the trainer's reconciles (each rolls forward a stale change by hand)."""

    def __init__(self) -> None:
        self.reconciles = 0

    def reconcile(self) -> list[object]:
        self.reconciles += 1
        return []


def test_the_trainer_reconciles_every_check_interval_with_no_clock_and_with_nothing_left_to_close(
    tmp_path: Path,
) -> None:
    """A change by hand a killed service left pending is nobody else's: the trainer looks for one every
    ``change_check_s``, not only when it (re)starts, and also while there is no clock to follow."""
    store = PriceStore(f"sqlite:///{tmp_path / 'repair.db'}", StoreSettings(change_check_s=10))
    store.migrate()
    contest = _CountingContest()
    trainer = TrainerService(contest, store, holder="host:1")  # type: ignore[arg-type]
    trainer.step(REAL)  # no clock, no candles: only the reconcile
    trainer.step(REAL + timedelta(seconds=9))
    assert contest.reconciles == 1
    trainer.step(REAL + timedelta(seconds=10))
    assert contest.reconciles == 2
    store.upsert_candles(CANDLES.iloc[:48])
    store.write_clock(start_clock(datetime(2099, 1, 1, tzinfo=UTC), speed=1.0, real_now=REAL, paused=True))
    for seconds in range(11, 41):  # the clock has finished: nothing is left to close
        trainer.step(REAL + timedelta(seconds=seconds))
    assert contest.reconciles == 5  # at 20, 30 and 40 s
    store.dispose()
