"""``GET /shadow``: the challenger's forecasts, the very ones the contest scores it on, never served."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from btcmlops.registry import CHALLENGER, ModelRegistry
from btcmlops.replay import ReplayResult
from btcmlops.serving import create_app
from btcmlops.settings import Settings
from factories import ReplayOf

# One xdist worker (make test) runs the module: the module's replay is copied once.
pytestmark = pytest.mark.xdist_group("routes_contest")


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory, replay_of: ReplayOf) -> ReplayResult:
    return replay_of(tmp_path_factory.mktemp("shadow"), "2021-01-01", "2021-04-30 23:00", ar=0.3)


@pytest.fixture
def registry(replay: ReplayResult) -> Iterator[ModelRegistry]:
    settings = Settings()
    registry = ModelRegistry(
        replay.tracking_uri, settings.mlflow.experiment, settings.mlflow.registered_model, create=False
    )
    yield registry
    registry.delete_alias(CHALLENGER)


def _client(replay: ReplayResult, tmp_path: Path) -> TestClient:
    settings = Settings(
        home=tmp_path,
        store={"url": f"sqlite:///{replay.out_dir / 'prices.db'}"},
        mlflow={"tracking_uri": replay.tracking_uri},
        serve={"poll_interval_s": 0.05, "log_flush_interval_s": 0.05},
    )
    return TestClient(create_app(settings))


def _wait_for(client: TestClient, params: dict[str, str], version: int | None) -> dict[str, object]:
    """The /shadow answer once the service has its candles, a champion and the expected challenger."""
    deadline = time.monotonic() + 30
    while True:
        # Readiness first, then the answer: an answer asked before the candles were in memory is empty.
        loaded = client.get("/model").json()["candles_in_memory"] > 0
        ready = loaded and client.get("/readyz").status_code == 200
        body: dict[str, object] = client.get("/shadow", params=params).json()
        if ready and body["version"] == version:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def test_shadow_forecasts_are_the_contests_shadow_forecasts_on_unseen_hours_only(
    replay: ReplayResult, registry: ModelRegistry, tmp_path: Path
) -> None:
    rows = pd.read_csv(replay.predictions_path)
    shadow_rows = rows.loc[rows["role"] == "challenger"]
    version = int(shadow_rows["model_version"].iloc[0])
    scored = shadow_rows.loc[shadow_rows["model_version"] == version]
    registry.set_alias(CHALLENGER, version)
    # From well before its training window ended: only the hours it has not seen may come back.
    params = {"start": "2021-01-15T00:00:00Z", "end": scored["timestamp"].iloc[-1]}

    with _client(replay, tmp_path) as client:
        body = _wait_for(client, params, version)
        served_before = client.get("/predictions").json()

    forecasts = pd.DataFrame(body["forecasts"])  # type: ignore[arg-type]
    train_end = pd.Timestamp(registry.versions()[version - 1].window.train_end)
    assert (pd.to_datetime(forecasts["target_time"]) > train_end).all()
    assert forecasts["timestamp"].tolist() == scored["timestamp"].tolist()
    assert forecasts["predicted_close"].to_numpy() == pytest.approx(
        scored["predicted_close"].to_numpy(), rel=1e-12
    )
    assert served_before == []  # shadow forecasts are not served: nothing in the prediction log


def test_no_challenger_in_shadow_gives_an_empty_answer(
    replay: ReplayResult, registry: ModelRegistry, tmp_path: Path
) -> None:
    registry.delete_alias(CHALLENGER)
    with _client(replay, tmp_path) as client:
        body = _wait_for(client, {"start": "2021-03-01T00:00:00Z", "end": "2021-03-02T00:00:00Z"}, None)
    assert body["forecasts"] == []
