"""The core against the parts compose runs: a real mlflow server on MariaDB, artifacts in S3 (moto).

The code under test gets only the server's URL: no S3 credentials, no artifact location. Everything it
stores goes through the REST API and the server's artifact proxy, as it will in docker compose.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from btcmlops.contest import TrainingWindow
from btcmlops.features import build_samples
from btcmlops.model import Forecaster, train_forecaster
from btcmlops.registry import CHALLENGER, CHAMPION, ModelRegistry, VersionStatus
from btcmlops.replay import run_replay
from btcmlops.settings import ModelSettings, Settings
from btcmlops.store import PriceStore
from factories import make_candles, write_project_csv

pytestmark = pytest.mark.integration

PROXY_SCHEME = "mlflow-artifacts:"
TINY_MODEL = ModelSettings(num_boost_round=20, min_data_in_leaf=20)


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _window(samples: pd.DataFrame, trained_through: str) -> TrainingWindow:
    target = samples["target_time"]
    return TrainingWindow(
        target.iloc[0], target.iloc[-1], len(samples), f"digest-{trained_through}", trained_through
    )


def _aliases_and_statuses(registry: ModelRegistry) -> dict[int, tuple[tuple[str, ...], str | None]]:
    return {info.version: (info.aliases, info.status) for info in registry.versions()}


def test_registry_conventions_through_the_server(
    mlflow_server: str, s3_keys: Callable[[str], list[str]]
) -> None:
    """Aliases, status and window tags, and model files round-trip through the server and its S3 proxy."""
    samples = build_samples(make_candles("2021-01-01", "2021-01-20"))
    early = samples.iloc[: len(samples) * 2 // 3]
    trained: dict[int, tuple[Forecaster, TrainingWindow]] = {}
    registry = ModelRegistry(mlflow_server, _unique("conventions"), _unique("model"))
    for rows, month in ((early, "2021-01-13"), (samples, "2021-01-20")):
        forecaster, window = train_forecaster(rows, TINY_MODEL), _window(rows, month)
        info = registry.register(
            forecaster, window, TINY_MODEL.model_dump(), {"in_sample_mae": 1.0}, rows.head(5), run_name=month
        )
        trained[info.version] = (forecaster, window)
    assert list(trained) == [1, 2]
    assert registry.experiment_id is not None
    client = MlflowClient(tracking_uri=mlflow_server)
    assert client.get_experiment(registry.experiment_id).artifact_location.startswith(PROXY_SCHEME)

    registry.set_alias(CHAMPION, 1)
    registry.set_status(1, VersionStatus.PRODUCTION)
    registry.set_alias(CHALLENGER, 2)
    registry.set_status(2, VersionStatus.STAGING)
    assert _aliases_and_statuses(registry) == {1: ((CHAMPION,), "production"), 2: ((CHALLENGER,), "staging")}

    registry.set_alias(CHAMPION, 2)  # a promotion: the alias moves, it is never on two versions
    registry.set_status(1, VersionStatus.ARCHIVED)
    registry.set_status(2, VersionStatus.PRODUCTION)
    assert _aliases_and_statuses(registry) == {1: ((), "archived"), 2: ((CHALLENGER, CHAMPION), "production")}
    registry.delete_alias(CHALLENGER)
    assert registry.get_by_alias(CHALLENGER) is None  # the REST store's "no such alias" reads as None

    # A reader as the inference service opens one: nothing cached, nothing created.
    fresh = ModelRegistry(mlflow_server, registry.experiment_name, registry.model_name, create=False)
    champion = fresh.get_by_alias(CHAMPION)
    assert champion is not None
    assert (champion.version, champion.window, champion.status) == (2, trained[2][1], "production")
    assert champion.feature_set == trained[2][0].feature_set
    predictions = {}
    for version, (original, _) in trained.items():
        predictions[version] = fresh.load(version).predict_close(samples)
        np.testing.assert_allclose(predictions[version], original.predict_close(samples), rtol=1e-12)
    assert not np.allclose(predictions[1], predictions[2])  # each version is its own model

    for info in fresh.versions():
        artifact_uri = client.get_run(info.run_id).info.artifact_uri
        assert artifact_uri.startswith(PROXY_SCHEME), artifact_uri  # loads went through the server
        model_dir = f"{artifact_uri.removeprefix(PROXY_SCHEME).strip('/')}/model"
        assert {f"{model_dir}/MLmodel", f"{model_dir}/model.lgb"} <= set(s3_keys(model_dir))


def _expected_registry(summary: dict[str, Any]) -> tuple[dict[int, str], int]:
    """Replay the decisions: v1 starts in production, a win swaps the pair, a loss archives the challenger."""
    champion = summary["trainings"][0]["version"]
    status = {champion: "production"}
    for decision in summary["decisions"]:
        assert decision["champion_version"] == champion
        if decision["promoted"]:
            status[champion] = "archived"
            champion = decision["challenger_version"]
            status[champion] = "production"
        else:
            status[decision["challenger_version"]] = "archived"
    return status, champion


def test_replay_against_mlflow_server_and_mariadb(
    mlflow_server: str, mariadb_url_factory: Callable[[], str], tmp_path: Path
) -> None:
    """The full contest with every side effect on real services; registry, runs and store agree with it.

    The market flips from mean reversion to momentum in March, so a challenger that has seen March
    beats v1 on April: at least one promotion is certain, not luck.
    """
    store_url = mariadb_url_factory()
    data = tmp_path / "candles.csv"
    regimes = [("2021-01-01", -0.8), ("2021-03-01", 0.8)]
    write_project_csv(make_candles("2021-01-01", "2021-05-31 23:00", ar=regimes, noise=0.003), str(data))
    settings = Settings(
        _env_file=None,
        home=tmp_path / "home",
        store={"url": store_url},
        mlflow={
            "tracking_uri": mlflow_server,
            "experiment": _unique("replay"),
            "registered_model": _unique("m"),
        },
        contest={"first_train_months": 2, "margin": 0.0, "require_beat_naive": False},
        model={"num_boost_round": 40, "min_data_in_leaf": 20},
    )

    summary = run_replay(settings, data, tmp_path / "out").summary

    trainings, decisions = summary["trainings"], summary["decisions"]
    assert [t["trained_through"] for t in trainings] == ["2021-02", "2021-03", "2021-04"]
    assert [d["month"] for d in decisions] == ["2021-04", "2021-05"]
    assert summary["promotions"] >= 1
    expected_status, expected_champion = _expected_registry(summary)
    assert summary["final_champion"] == expected_champion

    registry = ModelRegistry(mlflow_server, settings.mlflow.experiment, settings.mlflow.registered_model)
    assert registry.experiment_id is not None
    versions = registry.versions()
    assert {v.version: v.run_id for v in versions} == {t["version"]: t["run_id"] for t in trainings}
    assert {v.version: v.status for v in versions} == expected_status
    assert [v.version for v in versions if CHAMPION in v.aliases] == [summary["final_champion"]]
    assert registry.get_by_alias(CHAMPION).version == summary["final_champion"]  # type: ignore[union-attr]
    assert registry.get_by_alias(CHALLENGER) is None  # every challenger was decided
    assert {v.version: v.window.trained_through for v in versions} == {
        t["version"]: t["trained_through"] for t in trainings
    }

    runs = MlflowClient(tracking_uri=mlflow_server).search_runs([registry.experiment_id])
    by_kind: dict[str, list[Any]] = {}
    for run in runs:
        by_kind.setdefault(run.data.tags["btcmlops.kind"], []).append(run)
    assert set(by_kind) == {"training", "contest"}
    assert {run.info.run_id for run in by_kind["training"]} == {t["run_id"] for t in trainings}
    contests = {run.data.tags["month"]: run for run in by_kind["contest"]}
    assert len(contests) == len(by_kind["contest"]) == len(decisions)
    for decision in decisions:
        run = contests[decision["month"]]
        assert run.data.params["promoted"] == str(decision["promoted"])
        assert run.data.params["challenger_version"] == str(decision["challenger_version"])

    store = PriceStore(store_url)
    try:
        rows = store.list_decisions(settings.mlflow.registered_model)
        assert store.candle_count() == 151 * 24  # January through May 2021, every hour
    finally:
        store.dispose()
    assert [(r.champion_version, r.challenger_version, r.promoted) for r in rows] == [
        (d["champion_version"], d["challenger_version"], d["promoted"]) for d in decisions
    ]
    assert [pd.Timestamp(r.eval_start) for r in rows] == [pd.Timestamp(d["eval_start"]) for d in decisions]
    for column in ("champion_mae", "challenger_mae", "naive_mae"):
        assert [getattr(r, column) for r in rows] == pytest.approx([d[column] for d in decisions], rel=1e-9)
    assert not (tmp_path / "out" / "mlflow.db").exists()  # nothing embedded when a server is configured
    assert not (tmp_path / "out" / "prices.db").exists()
