"""The feed and the trainer outlive a store outage (retried with a doubling wait), and stop on a
configuration error; one backoff for both."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy.exc
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from btcmlops.calendar import Month
from btcmlops.clock import start_clock
from btcmlops.features import UnknownFeatureSetError
from btcmlops.retry import Backoff, is_configuration_error, keep_trying, keep_trying_async, retrying
from btcmlops.services.feed import MarketFeed
from btcmlops.services.trainer import LEASE_NAME, TrainerService
from btcmlops.settings import StoreSettings, TrainerSettings
from btcmlops.store import PriceStore
from factories import make_candles
from services import MYSQL_SERVER_URL, mariadb_database, wait_until

CANDLES = make_candles("2021-01-01", "2021-03-31 23:00")
SIM_START = datetime(2021, 1, 2, tzinfo=UTC)
OUTAGE_STORE = StoreSettings(busy_timeout_s=0.05)
"""SQLite: a locked database fails a call in 50 ms (the store's busy timeout, 5 s by default, would
make each failed step of the outage tests last 5 s)."""


def test_the_backoff_doubles_up_to_its_cap_and_starts_over_after_a_success() -> None:
    backoff = Backoff(0.5, 3.0)
    assert [backoff.failed() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff.failures == 5
    backoff.succeeded()
    assert (backoff.failed(), backoff.failures) == (0.5, 1)
    with pytest.raises(ValueError, match="first_s <= max_s"):
        Backoff(2.0, 1.0)


def test_configuration_errors_are_told_from_transient_ones(tmp_path: Path) -> None:
    with pytest.raises(sqlalchemy.exc.ArgumentError) as malformed:
        create_engine("not a url")
    assert is_configuration_error(malformed.value)
    with pytest.raises(sqlalchemy.exc.NoSuchModuleError) as no_driver:
        create_engine("mysql+nosuchdriver://host/db")
    assert is_configuration_error(no_driver.value)
    assert is_configuration_error(UnknownFeatureSetError("unknown feature set 'v9'"))

    missing = create_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'prices.db'}")
    with pytest.raises(sqlalchemy.exc.OperationalError) as unreachable, missing.connect():
        pass
    assert not is_configuration_error(unreachable.value)  # a volume not mounted yet: wait for it
    assert not is_configuration_error(ConnectionRefusedError("MLflow is restarting"))
    assert not is_configuration_error(TimeoutError())


@pytest.mark.mariadb
def test_credentials_the_database_refuses_are_a_configuration_error() -> None:
    url = make_url(MYSQL_SERVER_URL).set(username="btcmlops_nobody", password="wrong")
    engine = create_engine(url)
    try:
        with pytest.raises(sqlalchemy.exc.OperationalError) as refused, engine.connect():
            pass
    finally:
        engine.dispose()
    if "Can't connect" in str(refused.value):
        pytest.skip(f"MariaDB not reachable at {MYSQL_SERVER_URL}")
    assert is_configuration_error(refused.value)


def test_retrying_gives_up_only_on_a_configuration_error_or_a_stop() -> None:
    stop = threading.Event()
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("database is locked"))
        return "answered"

    assert retrying(flaky, stop, Backoff(0.01, 0.02), "flaky") == "answered"
    assert len(attempts) == 3

    def misconfigured() -> str:
        raise UnknownFeatureSetError("unknown feature set 'v9'")

    with pytest.raises(UnknownFeatureSetError):
        retrying(misconfigured, stop, Backoff(0.01, 0.02), "misconfigured")
    stop.set()
    assert retrying(flaky, stop, Backoff(0.01, 0.02), "stopped") is None


@contextlib.contextmanager
def _outage(url: str) -> Iterator[None]:
    """The store stops answering while the block runs, then comes back.

    SQLite: another process holds an exclusive lock (``database is locked``, as a backup or a stuck
    writer would). MariaDB: the database is dropped, then created and migrated again (a restore).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        holder = sqlite3.connect(str(parsed.database), isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    server = create_engine(MYSQL_SERVER_URL)
    with server.begin() as connection:
        connection.execute(text(f"DROP DATABASE `{parsed.database}`"))
    try:
        yield
    finally:
        with server.begin() as connection:
            connection.execute(text(f"CREATE DATABASE `{parsed.database}` CHARACTER SET utf8mb4"))
        server.dispose()
        restored = PriceStore(url)
        restored.migrate()
        restored.write_clock(start_clock(SIM_START, 100.0, datetime.now(UTC)))
        restored.dispose()


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def outage_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'prices.db'}"
    else:
        yield from mariadb_database()


def _in_thread(run: Callable[[threading.Event], None]) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=run, args=(stop,), daemon=True)
    thread.start()
    return thread, stop


def test_the_feed_outlives_a_store_outage_and_goes_on_where_it_was(
    outage_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = PriceStore(outage_url)  # the test's own reads: they wait out the feed's writes
    store.migrate()
    store.write_clock(start_clock(SIM_START, 100.0, datetime.now(UTC)))  # 100 sim hours a second
    caplog.set_level(logging.INFO)
    feeds_store = PriceStore(outage_url, OUTAGE_STORE)
    feed = MarketFeed(feeds_store, CANDLES, interval_s=0.01, retry_first_s=0.02, retry_max_s=0.1)
    thread, stop = _in_thread(feed.run)
    try:
        wait_until(
            lambda: store.latest_candle_time() is not None,
            timeout_s=10,
            what="first candles",
            on_timeout=lambda: caplog.text[-2000:],
        )
        with _outage(outage_url):
            wait_until(
                lambda: caplog.text.count("feed step failed") >= 3,
                timeout_s=20,
                what="three failed feed steps",
                on_timeout=lambda: caplog.text[-2000:],
            )
            assert thread.is_alive()
        before = store.latest_candle_time()
        wait_until(
            lambda: (
                (latest := store.latest_candle_time()) is not None
                and (before is None or latest > before + timedelta(hours=10))
            ),
            timeout_s=20,
            what="candles written after the outage",
            on_timeout=lambda: caplog.text[-2000:],
        )
        assert thread.is_alive()
        assert "feed step succeeded again after" in caplog.text
        failed = [r for r in caplog.records if "feed step failed" in r.getMessage()]
        assert "OperationalError" in failed[0].getMessage() or "ProgrammingError" in failed[0].getMessage()
    finally:
        stop.set()
        thread.join(timeout=10)
        feeds_store.dispose()
        store.dispose()
    assert not thread.is_alive()


class _IdleContest:
    """A contest with nothing due: the trainer's rounds read the clock and the store, nothing more."""

    class changes:  # noqa: N801 - mimics the attribute of ``Contest``
        @staticmethod
        def sync_with_registry() -> None:
            return None

    def reconcile(self) -> list[object]:
        return []

    def first_open_month(self, first: object) -> Month:
        return Month(2099, 1)


def test_the_trainer_outlives_a_store_outage(outage_url: str, caplog: pytest.LogCaptureFixture) -> None:
    store = PriceStore(outage_url, OUTAGE_STORE)
    store.migrate()
    store.write_clock(start_clock(SIM_START, 100.0, datetime.now(UTC)))
    store.upsert_candles(CANDLES.iloc[:48])
    caplog.set_level(logging.INFO)
    settings = TrainerSettings(interval_s=0.02, retry_max_s=0.1, lease_ttl_s=30)
    trainer = TrainerService(_IdleContest(), store, settings, holder="host:1")  # type: ignore[arg-type]
    thread, stop = _in_thread(trainer.run)
    try:
        wait_until(
            lambda: "holds the lease" in caplog.text,
            timeout_s=10,
            what="the lease",
            on_timeout=lambda: caplog.text[-2000:],
        )
        with _outage(outage_url):
            wait_until(
                lambda: caplog.text.count("trainer round failed") >= 3,
                timeout_s=20,
                what="three failed rounds",
                on_timeout=lambda: caplog.text[-2000:],
            )
            assert thread.is_alive()
        if make_url(outage_url).get_backend_name() != "sqlite":  # restored empty: the lease is gone
            store.journal.acquire_lease(LEASE_NAME, "host:1", now=datetime.now(UTC), ttl_s=30)
            store.upsert_candles(CANDLES.iloc[:48])
        wait_until(
            lambda: "trainer round succeeded again" in caplog.text,
            timeout_s=20,
            what="a round after the outage",
            on_timeout=lambda: caplog.text[-2000:],
        )
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(timeout=10)
        store.dispose()
    assert not thread.is_alive()


def test_a_configuration_error_ends_the_feed_at_once(tmp_path: Path) -> None:
    class Misconfigured(PriceStore):
        def read_clock(self) -> None:
            raise sqlalchemy.exc.ArgumentError("Could not parse SQLAlchemy URL")

    store = Misconfigured(f"sqlite:///{tmp_path / 'prices.db'}")
    started = time.monotonic()
    with pytest.raises(sqlalchemy.exc.ArgumentError):
        MarketFeed(store, CANDLES).run(threading.Event())
    assert time.monotonic() - started < 5
    store.dispose()


def test_a_configuration_error_ends_the_trainer_at_once(tmp_path: Path) -> None:
    class Misconfigured(PriceStore):
        def read_clock(self) -> None:
            raise UnknownFeatureSetError("unknown feature set 'v9' (known: v1)")

    store = Misconfigured(f"sqlite:///{tmp_path / 'prices.db'}")
    store.migrate()
    trainer = TrainerService(_IdleContest(), store, TrainerSettings(interval_s=0.01), holder="host:1")  # type: ignore[arg-type]
    with pytest.raises(UnknownFeatureSetError):
        trainer.run(threading.Event())
    assert store.journal.lease(LEASE_NAME) is None  # released on the way out
    store.dispose()


def test_keep_trying_waits_what_each_round_says_backs_off_on_failures_and_says_when_it_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = threading.Event()
    outcomes: list[float | Exception | None] = [0.01, OSError("down"), OSError("down"), 0.01, None]
    rounds: list[int] = []

    def round_() -> float | None:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    caplog.set_level(logging.INFO, logger="btcmlops.retry")
    backoff = Backoff(0.01, 0.02)
    assert keep_trying(round_, stop, backoff, "a round", on_round=lambda: rounds.append(1)) is True
    assert len(rounds) == 4  # a heartbeat after every round, failed or not, but the last
    lines = [record.getMessage() for record in caplog.records]
    assert [line.split(";")[1] for line in lines[:2]] == [" retry 1 in 0.0 s", " retry 2 in 0.0 s"]
    assert lines[2] == "a round succeeded again after 2 failure(s)"
    assert backoff.failures == 0


def test_keep_trying_retries_only_what_it_is_told_and_never_a_configuration_error() -> None:
    stop = threading.Event()
    warned: list[tuple[str, float]] = []

    def warn(error: Exception, wait: float) -> None:
        warned.append((str(error), wait))

    def not_retried() -> float:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        keep_trying(not_retried, stop, Backoff(0.01, 0.01), "x", retry_on=(OSError,), warn=warn)

    def misconfigured() -> float:
        raise UnknownFeatureSetError("unknown feature set 'v9'")

    with pytest.raises(UnknownFeatureSetError):
        keep_trying(misconfigured, stop, Backoff(0.01, 0.01), "x", warn=warn)
    assert warned == []


def test_a_stop_cuts_the_wait_after_a_failure_short() -> None:
    stop = threading.Event()

    def down() -> float:
        stop.set()
        raise OSError("down")

    started = time.monotonic()
    assert keep_trying(down, stop, Backoff(60, 60), "x", warn=lambda error, wait: None) is False
    assert time.monotonic() - started < 5


def test_keep_trying_async_serves_on_through_any_error_until_cancelled() -> None:
    failures: list[float] = []
    successes: list[int] = []

    async def round_() -> None:
        if len(failures) < 3:
            raise UnknownFeatureSetError("a version of an unknown feature set: keep serving the old one")

    async def main() -> None:
        task = asyncio.create_task(
            keep_trying_async(
                round_,
                Backoff(0.01, 0.02),
                "a watcher",
                warn=lambda error, wait: failures.append(wait),
                pause=lambda: asyncio.sleep(60),  # cancelled in the pause
                on_success=lambda: successes.append(1),
            )
        )
        while not successes:
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(main(), 10))
    assert failures == [0.01, 0.02, 0.02]
    assert successes == [1]
