"""The clock endpoints, and the service refusing to forecast from an hour that has not closed in sim time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from btcmlops.clock import start_clock
from btcmlops.replay import ReplayResult
from btcmlops.services.feed import HourAnnouncer
from btcmlops.serving import create_app
from btcmlops.settings import Settings
from btcmlops.store import PriceStore
from factories import ReplayOf, make_candles
from services import wait_ready

# One xdist worker (make test) runs the module: the module's replay is copied once.
pytestmark = pytest.mark.xdist_group("routes_clock")

KEY = "test-key"


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory, replay_of: ReplayOf) -> ReplayResult:
    return replay_of(tmp_path_factory.mktemp("clock"), "2021-01-01", "2021-03-31 23:00")


@pytest.fixture
def client(replay: ReplayResult, tmp_path: Path) -> Iterator[TestClient]:
    store_copy = tmp_path / "prices.db"  # each test its own clock row
    store_copy.write_bytes((replay.out_dir / "prices.db").read_bytes())
    settings = Settings(
        home=tmp_path,
        store={"url": f"sqlite:///{store_copy}"},
        mlflow={"tracking_uri": replay.tracking_uri},
        serve={"poll_interval_s": 0.05, "control_key": KEY, "read_workers": 0},  # pages on a thread
        clock={"start": "2021-03-10T00:00:00Z", "speed": 0.01},  # 36 sim seconds per second
    )
    with TestClient(create_app(settings)) as test_client:
        wait_ready(test_client)
        yield test_client


def _change(client: TestClient, key: str | None = KEY, **body: object) -> dict[str, object]:
    headers = {"X-API-Key": key} if key else {}
    response = client.post("/clock", json=body, headers=headers)
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


def test_no_clock_until_reset_then_every_hour_is_not_yet_past(client: TestClient) -> None:
    assert client.get("/clock").status_code == 404
    assert client.post("/predict", json={"timestamp": "2021-03-20T00:00:00Z"}).status_code == 200  # no clock

    clock = _change(client, action="reset")

    assert str(clock["sim_now"]).startswith("2021-03-10T00:0")
    assert clock["last_closed_hour"] == "2021-03-09T23:00:00Z"
    future = client.post("/predict", json={"timestamp": "2021-03-20T00:00:00Z"})
    assert future.status_code == 425
    assert "has not closed yet in sim time" in future.json()["detail"]
    assert client.post("/predict", json={"timestamp": "2021-03-09T23:00:00Z"}).status_code == 200


def test_changes_need_the_api_key(client: TestClient) -> None:
    assert client.post("/clock", json={"action": "reset"}).status_code == 401
    assert client.post("/clock", json={"action": "reset"}, headers={"X-API-Key": "nope"}).status_code == 401
    assert client.post("/clock", json={"action": "pause"}, headers={"X-API-Key": KEY}).status_code == 409


def test_pause_speed_resume(client: TestClient) -> None:
    _change(client, action="reset", speed=3600.0)  # 3600 sim hours per real second
    paused = _change(client, action="pause")
    assert paused["paused"] is True
    assert client.get("/clock").json()["sim_now"] == paused["sim_now"]
    fast = _change(client, action="speed", speed=7200.0)
    assert fast["speed"] == 7200.0
    resumed = _change(client, action="resume")
    assert resumed["paused"] is False
    later = client.get("/clock").json()
    assert datetime.fromisoformat(later["sim_now"]) >= datetime.fromisoformat(str(resumed["sim_now"]))


def test_without_a_configured_key_the_clock_cannot_change(replay: ReplayResult, tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        store={"url": f"sqlite:///{replay.out_dir / 'prices.db'}"},
        mlflow={"tracking_uri": replay.tracking_uri},
    )
    with TestClient(create_app(settings)) as test_client:
        response = test_client.post("/clock", json={"action": "reset"}, headers={"X-API-Key": "anything"})
    assert response.status_code == 403
    assert "BTCMLOPS_SERVE__CONTROL_KEY" in response.text


def test_the_next_hour_is_pushed_the_client_waits_until_the_feed_tells_of_its_candle(
    replay: ReplayResult, tmp_path: Path
) -> None:
    store_copy = tmp_path / "prices.db"
    store_copy.write_bytes((replay.out_dir / "prices.db").read_bytes())
    store = PriceStore(f"sqlite:///{store_copy}")
    store.write_clock(
        start_clock(datetime(2021, 4, 1, 0, 30, tzinfo=UTC), 1.0, datetime.now(UTC), paused=True)
    )
    settings = Settings(
        home=tmp_path,
        store={"url": f"sqlite:///{store_copy}"},
        mlflow={"tracking_uri": replay.tracking_uri},
        serve={"poll_interval_s": 60.0, "control_key": KEY},  # no store read by the clock meanwhile
    )
    after, hour = "2021-03-31T23:00:00Z", datetime(2021, 4, 1, tzinfo=UTC)  # the store's newest, the next
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        started = time.monotonic()
        clock = client.get("/clock", params={"after": after, "wait_s": 0.3}).json()
        assert time.monotonic() - started >= 0.3  # 00:00 has not closed: the whole wait, then the clock
        assert clock["last_forecastable_hour"].startswith("2021-03-31T23:00")
        assert client.post("/clock/hour-closed", json={"hour": hour.isoformat()}).status_code == 401

        # 00:00 closes and the feed writes it; the service hears of it from the feed's notice only
        store.update_clock(
            lambda _: start_clock(
                datetime(2021, 4, 1, 1, 30, tzinfo=UTC), 1.0, datetime.now(UTC), paused=True
            )
        )
        store.upsert_candles(make_candles("2021-03-31 23:00", "2021-04-01 00:00").tail(1))
        announcer = HourAnnouncer(client, KEY)
        notice = threading.Timer(0.2, announcer, args=[hour])  # told while the client waits
        notice.start()
        started = time.monotonic()
        clock = client.get("/clock", params={"after": after, "wait_s": 20}).json()
        assert time.monotonic() - started < 10  # answered on the notice, not at the wait's end
        assert clock["last_forecastable_hour"].startswith("2021-04-01T00:00")
        assert client.post("/predict", json={"timestamp": hour.isoformat()}).status_code == 200
        notice.join()
        announcer.close()
        assert announcer.sent == 1
        assert client.get("/clock").json()["speed"] == 1.0
    store.dispose()


def test_a_reset_clock_holds_at_the_months_end_and_the_held_hour_waits_for_its_champion(
    client: TestClient,
) -> None:
    _change(client, action="reset")  # from 2021-03-10: holds at the end of March until March is closed
    _change(client, action="speed", speed=10_000.0)
    deadline = time.monotonic() + 30
    while (clock := client.get("/clock").json())["state"] != "holding":
        assert time.monotonic() < deadline, clock
        time.sleep(0.05)
    assert clock["hold_at"].startswith("2021-04-01T00:00:00")
    assert clock["holding_for"] == "waiting for the trainer to close 2021-03"
    assert clock["last_closed_hour"].startswith("2021-03-31T23:00:00")
    assert clock["last_forecastable_hour"].startswith("2021-03-31T22:00:00")
    while (held := client.post("/predict", json={"timestamp": "2021-03-31T23:00:00Z"})).status_code != 425:
        assert time.monotonic() < deadline, held.text  # the service refreshes its copy of the clock
        time.sleep(0.05)
    assert "belongs to the champion that month's contest decides" in held.json()["detail"]
    assert client.post("/predict", json={"timestamp": "2021-03-31T22:00:00Z"}).status_code == 200


def _candles_payload(last: str) -> list[dict[str, object]]:
    candles = make_candles("2021-01-01", "2021-03-31 23:00")
    window = candles.loc[candles["open_time"] <= pd.Timestamp(last)].tail(30)
    return [{**row, "open_time": row["open_time"].isoformat()} for row in window.to_dict(orient="records")]


def test_the_log_says_when_each_forecast_was_made_and_client_candles_never_enter_it(
    client: TestClient, replay: ReplayResult
) -> None:
    _change(client, action="reset")  # sim 2021-03-10 00:00: 2021-03-09 23:00 is the newest closed hour
    live = client.post("/predict", json={"timestamp": "2021-03-09T23:00:00Z"})
    late = client.post("/predict", json={"timestamp": "2021-03-05T10:00:00Z"})  # its outcome is known
    assert live.status_code == late.status_code == 200
    # A client's own candles: from an hour not closed yet, refused; from a closed one, answered, not logged.
    future = client.post("/predict", json={"candles": _candles_payload("2021-03-20 00:00Z")})
    assert future.status_code == 425
    assert "no forecast from the future" in future.json()["detail"]
    sent = client.post("/predict", json={"candles": _candles_payload("2021-03-08 05:00Z")})
    assert sent.status_code == 200, sent.text

    deadline = time.monotonic() + 10
    while len(logged := client.get("/predictions", params={"start": "2021-03-01T00:00:00Z"}).json()) < 2:
        assert time.monotonic() < deadline, logged
        time.sleep(0.05)
    by_hour = {row["timestamp"][:16]: row for row in logged}
    assert set(by_hour) == {"2021-03-09T23:00", "2021-03-05T10:00"}  # the sent candles are not there
    assert by_hour["2021-03-09T23:00"]["live"] is True
    assert by_hour["2021-03-09T23:00"]["sim_made_at"].startswith("2021-03-10T00:0")
    assert by_hour["2021-03-05T10:00"]["live"] is False


def test_an_answer_about_an_hour_the_model_was_trained_on_says_so(
    client: TestClient, replay: ReplayResult
) -> None:
    train_end = pd.Timestamp(client.get("/model").json()["training_window"]["train_end"])
    inside = client.post(
        "/predict", json={"timestamp": (train_end - pd.Timedelta(hours=5)).isoformat()}
    ).json()
    outside = client.post(
        "/predict", json={"timestamp": train_end.isoformat()}
    ).json()  # forecasts an unseen hour
    assert inside["in_sample"] is True
    assert inside["served_live_by"] is None  # nobody forecast that hour live in this store
    assert outside["in_sample"] is False


def test_after_a_reset_a_forecast_of_an_hour_the_champion_was_trained_on_is_never_live(
    client: TestClient,
) -> None:
    """Reset to a day inside the champion's training window: the clock makes the forecast "in time",
    but the hour is in-sample, so the log must not count it live (the dashboard scores live ones)."""
    train_end = pd.Timestamp(client.get("/model").json()["training_window"]["train_end"])
    day = (train_end - pd.Timedelta(days=2)).floor("D")
    _change(client, action="reset", start=day.isoformat())
    hour = day - pd.Timedelta(hours=1)  # the newest closed hour: its forecast is made before its target
    answer = client.post("/predict", json={"timestamp": hour.isoformat()}).json()
    assert answer["in_sample"] is True

    deadline = time.monotonic() + 10
    while not (
        logged := client.get("/predictions", params={"start": day.isoformat(), "end": day.isoformat()}).json()
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert pd.Timestamp(logged[0]["sim_made_at"]) < pd.Timestamp(logged[0]["target_time"]) + pd.Timedelta(
        hours=1
    )
    assert [row["live"] for row in logged] == [False]  # made in time by the clock, still in-sample
    again = client.post("/predict", json={"timestamp": hour.isoformat()}).json()
    assert again["served_live_by"] is None  # nobody forecast that hour live: it was never unseen
