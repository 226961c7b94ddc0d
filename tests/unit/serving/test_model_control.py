"""Promote and roll back through the API: the control key, the audit, and the service following."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from btcmlops.replay import ReplayResult
from btcmlops.serving import create_app
from btcmlops.settings import Settings
from factories import make_candles, small_replay

KEY = "a-long-control-key-for-tests"


@pytest.fixture
def replay(tmp_path: Path) -> ReplayResult:
    """A fresh replay per test: these tests change its registry."""
    return small_replay(tmp_path, make_candles("2021-01-01", "2021-04-30 23:00", ar=0.4))


@pytest.fixture
def client(replay: ReplayResult) -> Iterator[TestClient]:
    settings = Settings(
        home=replay.out_dir.parent,
        store={"url": f"sqlite:///{replay.out_dir / 'prices.db'}"},
        mlflow={"tracking_uri": replay.tracking_uri},
        serve={"poll_interval_s": 0.05, "log_flush_interval_s": 0.05},
        clock={"api_key": KEY},
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _served_version(client: TestClient, version: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if client.get("/model").json()["version"] == version:
            return
        time.sleep(0.05)
    pytest.fail(f"the service did not swap to v{version}: {client.get('/model').json()}")


def test_promote_and_rollback_need_the_key_are_audited_and_served(
    client: TestClient, replay: ReplayResult
) -> None:
    champion = replay.summary["final_champion"]
    other = 1 if champion == 2 else 2
    _served_version(client, champion)
    before = client.get("/model/history").json()
    assert before[0]["source"] == "contest"
    assert before[0]["to_version"] == 1

    body = {"version": other, "reason": "live check"}
    assert client.post("/model/promote", json=body).status_code == 401
    assert client.post("/model/promote", json=body, headers={"X-API-Key": "wrong"}).status_code == 401
    promoted = client.post("/model/promote", json=body, headers={"X-API-Key": KEY})
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["source"] == "manual"
    assert (promoted.json()["from_version"], promoted.json()["to_version"]) == (champion, other)
    _served_version(client, other)

    again = client.post("/model/promote", json=body, headers={"X-API-Key": KEY})
    assert again.status_code == 409
    assert "already the champion" in again.json()["detail"]
    unknown = client.post("/model/promote", json={"version": 99, "reason": "x"}, headers={"X-API-Key": KEY})
    assert unknown.status_code == 409
    assert "no version 99" in unknown.json()["detail"]
    assert (
        client.post(
            "/model/promote", json={"version": 1, "reason": ""}, headers={"X-API-Key": KEY}
        ).status_code
        == 422
    )

    back = client.post("/model/rollback", json={"reason": "undo"}, headers={"X-API-Key": KEY})
    assert back.status_code == 200, back.text
    _served_version(client, champion)
    history = client.get("/model/history").json()
    assert [
        (h["from_version"], h["to_version"], h["source"], h["reason"]) for h in history[len(before) :]
    ] == [
        (champion, other, "manual", "live check"),
        (other, champion, "manual", "undo"),
    ]
    assert all(h["actor"] == "api (X-API-Key)" for h in history[len(before) :])


def test_without_a_key_configured_the_model_cannot_be_changed(replay: ReplayResult) -> None:
    settings = Settings(
        home=replay.out_dir.parent,
        store={"url": f"sqlite:///{replay.out_dir / 'prices.db'}"},
        mlflow={"tracking_uri": replay.tracking_uri},
    )
    with TestClient(create_app(settings)) as client:
        response = client.post("/model/rollback", json={"reason": "x"}, headers={"X-API-Key": "anything"})
        assert response.status_code == 403
        assert "BTCMLOPS_CLOCK__API_KEY" in response.json()["detail"]
