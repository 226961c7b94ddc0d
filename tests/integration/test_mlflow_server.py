"""The core against the parts compose runs: a real mlflow server on MariaDB, artifacts in S3."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from btcmlops.features import build_samples
from btcmlops.model import train_forecaster
from btcmlops.registry import CHALLENGER, CHAMPION, ModelRegistry, TrainingWindow, VersionStatus
from btcmlops.replay import run_replay
from btcmlops.settings import ModelSettings, Settings
from btcmlops.store import PriceStore
from factories import make_candles, write_project_csv
from services import mariadb_database

pytestmark = pytest.mark.integration

FAST_MODEL = {"num_boost_round": 40, "min_data_in_leaf": 20}


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def store_database() -> Iterator[str]:
    yield from mariadb_database()


def test_registry_conventions_through_the_server(mlflow_server: str, s3_endpoint) -> None:  # type: ignore[no-untyped-def]
    samples = build_samples(make_candles("2021-01-01", "2021-01-20"))
    forecaster = train_forecaster(samples, ModelSettings(**FAST_MODEL))
    window = TrainingWindow(
        samples["target_time"].iloc[0], samples["target_time"].iloc[-1], len(samples), "hash", "2021-01"
    )
    registry = ModelRegistry(mlflow_server, _unique("exp"), _unique("model"))
    versions = [
        registry.register(forecaster, window, {"a": 1}, {"m": 1.0}, samples.head(3), run_name=f"v{i}").version
        for i in (1, 2)
    ]
    assert versions == [1, 2]
    registry.set_alias(CHAMPION, 1)
    registry.set_alias(CHALLENGER, 2)
    registry.set_status(1, VersionStatus.PRODUCTION)
    registry.set_status(2, VersionStatus.STAGING)
    registry.set_alias(CHAMPION, 2)  # moves: one version per alias
    registry.delete_alias(CHALLENGER)

    fresh = ModelRegistry(mlflow_server, registry.experiment_name, registry.model_name)
    assert {(v.version, v.aliases, v.status) for v in fresh.versions()} == {
        (1, (), "production"),
        (2, ("champion",), "staging"),
    }
    assert fresh.get_by_alias(CHAMPION).window == window  # type: ignore[union-attr]
    loaded = fresh.load(2)  # downloaded through the server's artifact proxy
    np.testing.assert_allclose(loaded.predict_close(samples), forecaster.predict_close(samples))
    assert any(key.endswith("/MLmodel") for key in s3_endpoint.object_keys())


def test_replay_against_mlflow_server_and_mariadb(
    mlflow_server: str, store_database: str, tmp_path: Path
) -> None:
    """The full contest with every side effect on real services; the registry agrees with the summary.

    The market flips from mean reversion to momentum in March, so a challenger that has seen March
    beats v1 on April: at least one promotion is certain, not luck.
    """
    data = tmp_path / "candles.csv"
    regimes = [("2021-01-01", -0.8), ("2021-03-01", 0.8)]
    write_project_csv(make_candles("2021-01-01", "2021-05-31 23:00", ar=regimes, noise=0.003), str(data))
    settings = Settings(
        home=tmp_path / "home",
        store={"url": store_database},
        mlflow={
            "tracking_uri": mlflow_server,
            "experiment": _unique("replay"),
            "registered_model": _unique("m"),
        },
        contest={"first_train_months": 2},
        model=FAST_MODEL,
    )

    result = run_replay(settings, data, tmp_path / "out")

    summary = json.loads(result.summary_path.read_text())
    assert [t["trained_through"] for t in summary["trainings"]] == ["2021-02", "2021-03", "2021-04"]
    assert [d["month"] for d in summary["decisions"]] == ["2021-04", "2021-05"]
    assert summary["promotions"] >= 1
    registry = ModelRegistry(mlflow_server, settings.mlflow.experiment, settings.mlflow.registered_model)
    assert registry.get_by_alias(CHAMPION).version == summary["final_champion"]  # type: ignore[union-attr]
    assert registry.get_by_alias(CHALLENGER) is None
    expected = {t["version"]: "archived" for t in summary["trainings"]}
    expected[summary["final_champion"]] = "production"
    assert {v.version: v.status for v in registry.versions()} == expected
    runs = MlflowClient(tracking_uri=mlflow_server).search_runs([registry.experiment_id])
    kinds = pd.Series([r.data.tags["btcmlops.kind"] for r in runs]).value_counts().to_dict()
    assert kinds == {"training": 3, "contest": 2}
    store = PriceStore(store_database)
    try:
        rows = store.list_decisions(settings.mlflow.registered_model)
        assert store.candle_count() == 151 * 24
    finally:
        store.dispose()
    assert [(r.champion_version, r.challenger_version, r.promoted) for r in rows] == [
        (d["champion_version"], d["challenger_version"], d["promoted"]) for d in summary["decisions"]
    ]
    assert [r.challenger_mae for r in rows] == pytest.approx(
        [d["challenger_mae"] for d in summary["decisions"]]
    )
    assert not (tmp_path / "out" / "mlflow.db").exists()  # nothing embedded when a server is configured
