"""Promote and roll back through the API: the control key, the audit, and the service following."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from fastapi import FastAPI
from fastapi.testclient import TestClient
from mlflow.exceptions import MlflowException
from sqlalchemy.exc import OperationalError

from btcmlops.contest.changes import ChangeRefusedError
from btcmlops.replay import ReplayResult
from btcmlops.serving import create_app
from btcmlops.serving.deps import get_changes, get_settings
from btcmlops.serving.errors import add_error_handlers
from btcmlops.serving.routes import model
from btcmlops.settings import Settings
from btcmlops.store import AuditEntry, ChangeInProgressError
from factories import ReplayOf
from services import serving_replay, wait_until

KEY = "a-long-control-key-for-tests"


@pytest.fixture
def replay(tmp_path: Path, replay_of: ReplayOf) -> ReplayResult:
    """A fresh copy of the replay per test: these tests change its registry."""
    return replay_of(tmp_path, "2021-01-01", "2021-04-30 23:00", ar=0.4)


@pytest.fixture
def client(replay: ReplayResult) -> Iterator[TestClient]:
    with serving_replay(replay, serve={"control_key": KEY}) as test_client:
        yield test_client


def _served_version(client: TestClient, version: int) -> None:
    wait_until(
        lambda: client.get("/model").json()["version"] == version,
        timeout_s=30,
        what=f"the service serving v{version}",
        on_timeout=lambda: client.get("/model").text,
        every_s=0.05,
    )


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
        assert "BTCMLOPS_SERVE__CONTROL_KEY" in response.json()["detail"]


def _unreachable_mlflow() -> MlflowException:
    """What MLflow's REST client raises when its server does not answer."""
    try:
        try:
            raise requests.ConnectionError("Connection refused")
        except requests.ConnectionError as error:
            raise MlflowException(f"API request to http://mlflow/api failed with exception {error}")  # noqa: B904
    except MlflowException as raised:
        return raised


class _RefusingChanges:
    """``ChampionChanges`` whose every change fails with ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def promote(self, version: int, *, reason: str, actor: str) -> AuditEntry:
        raise self.error

    def rollback(self, *, reason: str, actor: str) -> AuditEntry:
        raise self.error


def _router_alone(changes: _RefusingChanges) -> FastAPI:
    """The model router on its own, its champion changes made by ``changes``."""
    app = FastAPI()
    app.include_router(model.router)
    add_error_handlers(app)
    app.dependency_overrides[get_settings] = lambda: Settings(serve={"control_key": KEY})
    app.dependency_overrides[get_changes] = lambda: changes
    return app


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ChangeRefusedError("v2 is already the champion"), 409),
        (ChangeInProgressError("another change of the champion is pending"), 409),
        (OperationalError("INSERT", {}, ConnectionRefusedError("refused")), 503),
        (_unreachable_mlflow(), 503),
    ],
)
@pytest.mark.parametrize(
    ("path", "body"),
    [("/model/promote", {"version": 2, "reason": "x"}), ("/model/rollback", {"reason": "x"})],
)
def test_a_change_that_fails_is_answered_as_the_router_documents(
    error: Exception, status: int, path: str, body: dict[str, object]
) -> None:
    app = _router_alone(_RefusingChanges(error))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        response = test_client.post(path, json=body, headers={"X-API-Key": KEY})
    assert response.status_code == status, response.text
    assert str(status) in app.openapi()["paths"][path]["post"]["responses"]
    if status == 503:
        assert response.headers["Retry-After"] == "1"


def test_mlflow_refusing_a_change_is_a_server_error_not_an_outage() -> None:
    """Only a registry that cannot be reached is a 503 (ask again); MLflow refusing is a bug to see."""
    app = _router_alone(_RefusingChanges(MlflowException("INVALID_PARAMETER_VALUE")))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        response = test_client.post("/model/rollback", json={"reason": "x"}, headers={"X-API-Key": KEY})
    assert response.status_code == 500
