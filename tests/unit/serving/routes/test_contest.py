"""``GET /shadow``: the challenger's forecasts, the very ones the contest scores it on, never served."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from btcmlops.registry import CHALLENGER, ModelRegistry
from btcmlops.replay import ReplayResult
from btcmlops.serving import create_app
from btcmlops.settings import Settings
from btcmlops.store import DecisionRow, PriceStore
from factories import ReplayOf

Serve = Callable[..., AbstractContextManager[TestClient]]
SettingsCopy = Callable[..., Settings]
NEW_FIELDS = (
    "champion_interval",
    "challenger_interval",
    "naive_interval",
    "dm_statistic",
    "dm_p_value",
    "dm_interval_statistic",
    "dm_interval_p_value",
    "metric",
)

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
        serve={"poll_interval_s": 0.05, "log_flush_interval_s": 0.05, "read_workers": 0},  # pages on a thread
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
    intervals = pd.DataFrame(forecasts["interval"].tolist())  # the very intervals the contest scored
    assert (intervals["level"] == scored["interval_level"].to_numpy()).all()
    assert intervals["lower"].to_numpy() == pytest.approx(scored["lower_close"].to_numpy(), rel=1e-12)
    assert intervals["upper"].to_numpy() == pytest.approx(scored["upper_close"].to_numpy(), rel=1e-12)
    assert served_before == []  # shadow forecasts are not served: nothing in the prediction log


def test_no_challenger_in_shadow_gives_an_empty_answer(
    replay: ReplayResult, registry: ModelRegistry, tmp_path: Path
) -> None:
    registry.delete_alias(CHALLENGER)
    with _client(replay, tmp_path) as client:
        body = _wait_for(client, {"start": "2021-03-01T00:00:00Z", "end": "2021-03-02T00:00:00Z"}, None)
    assert body["forecasts"] == []


def test_decisions_give_each_contestants_interval_scores_both_tests_and_the_metric_as_fields(
    serve: Serve, settings_copy: SettingsCopy, inputs_replay: ReplayResult
) -> None:
    """As the replay's summary has them; a row recorded before intervals gives nulls, not an error."""
    settings = settings_copy()
    store = PriceStore(settings.store.url or "")
    store.record_decision(
        DecisionRow(
            registered_model=settings.mlflow.registered_model,
            eval_start=datetime(2020, 12, 1, tzinfo=UTC),
            eval_end=datetime(2020, 12, 31, 23, tzinfo=UTC),
            champion_version=1,
            challenger_version=2,
            champion_mae=10.0,
            challenger_mae=9.0,
            naive_mae=11.0,
            metrics={
                "champion": {"mae": 10.0},
                "significance": {"statistic": -1.0, "p_value": 0.16, "lags": 6},
            },
            promoted=True,
            reason="older",
            decided_at=datetime(2021, 1, 1, tzinfo=UTC),
        )
    )
    store.dispose()
    with serve() as client:
        older, *decisions = client.get("/decisions").json()

    assert older["eval_start"] == "2020-12-01T00:00:00Z"
    assert {key: older[key] for key in NEW_FIELDS} == {
        **dict.fromkeys(NEW_FIELDS),
        "dm_statistic": -1.0,
        "dm_p_value": 0.16,
    }
    summary = inputs_replay.summary["decisions"]
    assert len(decisions) == len(summary) > 0
    for decision, replayed in zip(decisions, summary, strict=True):
        for name in ("champion", "challenger", "naive"):
            assert decision[f"{name}_interval"] == replayed["intervals"][name]
        assert decision["champion_interval"]["level"] == settings.model.interval_level
        assert decision["dm_p_value"] == pytest.approx(replayed["dm_p_value"], rel=1e-12)
        assert decision["dm_interval_p_value"] == pytest.approx(replayed["dm_interval_p_value"], rel=1e-12)
        assert decision["metric"] == replayed["metric"] == "mae"
        assert decision["dm_statistic"] == decision["metrics"]["significance"]["statistic"]
        assert decision["dm_interval_statistic"] == decision["metrics"]["interval_significance"]["statistic"]
