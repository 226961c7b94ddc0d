"""The hourly client against the real service in-process: every hour once, in order, resumed on restart."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from btcmlops.clock import start_clock
from btcmlops.replay import ReplayResult
from btcmlops.services.hourly_client import HourlyClient
from btcmlops.store import PriceStore
from factories import ReplayOf
from services import serving_replay, wait_until

SIM_NOW = datetime(2021, 3, 5, 6, 30, tzinfo=UTC)  # hours up to 05:00 have closed


@pytest.fixture
def replay(tmp_path: Path, replay_of: ReplayOf) -> ReplayResult:
    return replay_of(tmp_path, "2021-01-01", "2021-03-31 23:00")


@pytest.fixture
def service(replay: ReplayResult) -> Iterator[tuple[TestClient, PriceStore]]:
    store = PriceStore(f"sqlite:///{replay.out_dir / 'prices.db'}")
    store.write_clock(start_clock(SIM_NOW, 1.0, datetime.now(UTC), paused=True))
    with serving_replay(replay) as client:
        yield client, store
    store.dispose()


def _logged_hours(store: PriceStore, expected: int) -> list[pd.Timestamp]:
    deadline = time.monotonic() + 10
    while len(rows := store.read_predictions(limit=100_000)) < expected and time.monotonic() < deadline:
        time.sleep(0.05)  # the service writes its log in the background
    return [pd.Timestamp(row.timestamp) for row in rows]


def test_every_hour_from_the_champions_first_unseen_one_is_asked_once_and_a_restart_resumes(
    service: tuple[TestClient, PriceStore],
) -> None:
    client, store = service
    train_end = datetime.fromisoformat(client.get("/model").json()["training_window"]["train_end"])
    expected = pd.date_range(train_end, SIM_NOW - timedelta(hours=1, minutes=30), freq="h")

    first = HourlyClient(client)
    assert first.progress() == "waiting for a champion to serve: no hour asked yet"
    assert first.step() == len(expected)
    assert first.progress() == f"{len(expected):,} hour(s) answered; next: 2021-03-05 06:00Z"
    assert first.step() == 0  # nothing new has closed
    assert _logged_hours(store, len(expected)) == list(expected)

    store.update_clock(
        lambda clock: start_clock(SIM_NOW + timedelta(hours=3), 1.0, datetime.now(UTC), paused=True)
    )
    restarted = HourlyClient(client)  # a new process: resumes after the newest logged forecast
    deadline = time.monotonic() + 10
    while restarted.answered < 3 and time.monotonic() < deadline:  # 06:00, 07:00, 08:00 closed since
        restarted.step()  # the service's copy of the clock may lag a poll: "too early" is asked again
        time.sleep(0.05)
    assert restarted.answered == 3
    assert set(restarted.put_off) <= {425}, restarted.put_off
    if restarted.put_off:  # the wait is said by what it waited for
        assert "x 425 (too early)" in restarted.progress()
    hours = _logged_hours(store, len(expected) + 3)
    assert hours == list(pd.date_range(train_end, SIM_NOW + timedelta(hours=1, minutes=30), freq="h"))
    assert pd.Series(hours).is_unique  # no hour asked twice across the restart


def test_a_paced_clock_waits_for_each_forecast_and_every_forecast_is_live(
    service: tuple[TestClient, PriceStore],
) -> None:
    client, store = service
    due = datetime(2021, 3, 10, tzinfo=UTC)
    fast = replace(start_clock(due, 1000.0, datetime.now(UTC), paced=True), forecast_due=due)
    store.write_clock(fast)  # 1,000 sim h/s: without the pace a day of sim time every 24 ms
    wait_until(  # the clock reaches the forecast it waits for, and holds there
        lambda: client.get("/clock").json()["state"] == "holding",
        timeout_s=10,
        what="the clock to hold",
        on_timeout=lambda: client.get("/clock").text,
        every_s=0.05,
    )
    waiting = client.get("/clock").json()
    assert waiting["state"] == "holding"
    assert waiting["sim_now"].startswith("2021-03-10T01:59:59")
    assert (
        waiting["holding_for"] == "waiting for the forecast from 2021-03-10 00:00 (the hourly client asks it)"
    )
    assert waiting["forecast_due"].startswith("2021-03-10T00:00")

    # thinks it is further on; waits on the service for each next hour (told at once of the due one)
    asker = HourlyClient(client, first_hour=due + timedelta(hours=5), wait_s=5.0)
    started = time.monotonic()
    for _ in range(40):
        asker.step()
    clock = store.read_clock()
    assert clock is not None
    assert clock.forecast_due is not None
    answered_hours = int((clock.forecast_due - due) / timedelta(hours=1))
    assert time.monotonic() - started < 5  # no wait ran to its end: each answered as its hour closed
    assert answered_hours >= 20  # it ran on, one hour per forecast (the client went back to the due hour)
    rows = _logged_hours(store, answered_hours)
    assert rows == list(pd.date_range(due, periods=answered_hours, freq="h"))
    logged = store.read_predictions(limit=100_000)
    assert all(row.live for row in logged), [row for row in logged if not row.live][:3]


def test_a_service_that_does_not_answer_is_asked_again_a_second_later(
    caplog: pytest.LogCaptureFixture,
) -> None:
    asked: list[float] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        asked.append(time.monotonic())
        raise httpx.ConnectError("connection refused", request=request)

    stop = threading.Event()
    heartbeats: list[int] = []
    client = HourlyClient(httpx.Client(transport=httpx.MockTransport(refuse), base_url="http://api"))
    runner = threading.Thread(
        target=client.run, args=(stop,), kwargs={"on_round": lambda: heartbeats.append(1)}
    )
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while len(asked) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        runner.join(timeout=5)
    assert not runner.is_alive()  # the stop cut the wait after a failure short
    assert len(asked) >= 2
    assert asked[1] - asked[0] >= 0.95
    assert heartbeats
    assert "the inference service did not answer (connection refused); retrying" in caplog.text
