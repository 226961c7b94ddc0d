"""Registry conventions on a real (embedded SQLite) MLflow store: aliases, status tags, loading."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import mlflow.lightgbm
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from btcmlops.contest import TrainingWindow
from btcmlops.features import UnknownFeatureSetError, build_samples
from btcmlops.model import train_forecaster
from btcmlops.registry import (
    CHALLENGER,
    CHAMPION,
    ModelRegistry,
    VersionStatus,
    embedded_artifact_location,
    embedded_tracking_uri,
)
from btcmlops.registry.presentation import contest_version_tags
from btcmlops.registry.version_tags import DETAILS_TAG, unpack_version_tags
from btcmlops.settings import ModelSettings
from factories import make_candles

SAMPLES = build_samples(make_candles("2021-01-01", "2021-01-15"))
FORECASTER = train_forecaster(SAMPLES, ModelSettings(num_boost_round=10, min_data_in_leaf=20))
WINDOW = TrainingWindow(
    train_start=SAMPLES["target_time"].iloc[0],
    train_end=SAMPLES["target_time"].iloc[-1],
    train_rows=len(SAMPLES),
    data_hash="abc",
    trained_through="2021-01",
)


def _registry(directory: Path, cache: Path) -> ModelRegistry:
    return ModelRegistry(
        embedded_tracking_uri(directory, cache),
        "registry-test",
        "registry-test-model",
        artifact_location=embedded_artifact_location(directory),
    )


def _register(registry: ModelRegistry) -> int:
    return registry.register(
        FORECASTER,
        WINDOW,
        params={"a": 1},
        metrics={"m": 0.5},
        example_features=SAMPLES.head(3),
        run_name="t",
    ).version


def test_an_alias_points_at_exactly_one_version(tmp_path: Path, mlflow_cache: Path) -> None:
    registry = _registry(tmp_path, mlflow_cache)
    first, second = _register(registry), _register(registry)
    assert (first, second) == (1, 2)
    assert registry.get_by_alias(CHAMPION) is None

    registry.set_alias(CHAMPION, first)
    registry.set_alias(CHALLENGER, second)
    registry.set_alias(CHAMPION, second)

    assert registry.get_by_alias(CHAMPION).version == 2  # type: ignore[union-attr]
    aliases = {v.version: set(v.aliases) for v in registry.versions()}
    assert aliases == {1: set(), 2: {CHAMPION, CHALLENGER}}
    registry.delete_alias(CHALLENGER)
    assert registry.get_by_alias(CHALLENGER) is None


def test_fit_seconds_are_read_back_by_training_run_name(tmp_path: Path, mlflow_cache: Path) -> None:
    registry = _registry(tmp_path, mlflow_cache)
    for name, seconds in (("train-2021-01", 1.25), ("train-2021-02", 2.5)):
        registry.register(
            FORECASTER,
            WINDOW,
            params={},
            metrics={"train_seconds": seconds, "in_sample_mae": 9.0},
            example_features=SAMPLES.head(3),
            run_name=name,
        )
    _register(registry)  # a training run without a fit time
    registry.log_contest("contest-2021-02", {}, {"train_seconds": 7.0}, {})  # not a training run

    reader = ModelRegistry(registry.tracking_uri, "registry-test", "registry-test-model", create=False)
    assert reader.fit_seconds() == {"train-2021-01": 1.25, "train-2021-02": 2.5}


def test_status_tags_and_training_window_are_version_tags(tmp_path: Path, mlflow_cache: Path) -> None:
    registry = _registry(tmp_path, mlflow_cache)
    version = _register(registry)
    registry.set_status(version, VersionStatus.STAGING)
    registry.set_status(version, VersionStatus.ARCHIVED)

    (info,) = registry.versions()
    assert info.status == "archived"
    assert info.window == WINDOW
    assert info.feature_set == "v1"
    run = MlflowClient(tracking_uri=registry.tracking_uri).get_run(info.run_id)
    assert run.data.tags["train_end"] == WINDOW.train_end.isoformat()
    assert run.data.params["a"] == "1"


def test_a_fresh_registry_loads_the_same_model(tmp_path: Path, mlflow_cache: Path) -> None:
    version = _register(_registry(tmp_path, mlflow_cache))
    loaded = _registry(tmp_path, mlflow_cache).load(
        version
    )  # no in-process cache: read from the artifact store
    np.testing.assert_allclose(loaded.predict_close(SAMPLES), FORECASTER.predict_close(SAMPLES))


def test_family_and_device_are_version_tags_and_run_params(tmp_path: Path, mlflow_cache: Path) -> None:
    registry = _registry(tmp_path, mlflow_cache)
    config = ModelSettings(family="xgboost", num_boost_round=10, min_data_in_leaf=20)
    forecaster = train_forecaster(SAMPLES, config)
    info = registry.register(
        forecaster,
        WINDOW,
        params=config.model_dump(),
        metrics={},
        example_features=SAMPLES.head(3),
        run_name="x",
    )
    client = MlflowClient(tracking_uri=registry.tracking_uri)
    tags = unpack_version_tags(client.get_model_version(registry.model_name, str(info.version)).tags)
    assert (tags["family"], tags["device"]) == ("xgboost", "cpu")
    run = client.get_run(info.run_id)
    assert (run.data.tags["family"], run.data.tags["device"]) == ("xgboost", "cpu")
    assert (run.data.params["family"], run.data.params["device"]) == ("xgboost", "cpu")
    lightgbm = _register(registry)
    found = client.get_model_version(registry.model_name, str(lightgbm)).tags
    assert unpack_version_tags(found)["family"] == "lightgbm"


def test_a_version_carries_the_scanned_tags_and_one_json_tag(tmp_path: Path, mlflow_cache: Path) -> None:
    """What the versions table lists: status, trained through, outcome, and the rest on one line."""
    registry = _registry(tmp_path, mlflow_cache)
    client = MlflowClient(tracking_uri=registry.tracking_uri)
    version = _register(registry)
    tags = client.get_model_version(registry.model_name, str(version)).tags
    assert tags == {"trained_through": "2021-01", DETAILS_TAG: tags[DETAILS_TAG]}
    assert json.loads(tags[DETAILS_TAG]) == {
        "feature_set": "v1",
        "family": "lightgbm",
        "device": "cpu",
        "train_start": WINDOW.train_start.isoformat(),
        "train_end": WINDOW.train_end.isoformat(),
        "train_rows": str(WINDOW.train_rows),
        "data_hash": "abc",
    }

    registry.set_status(version, VersionStatus.PRODUCTION)
    contest = contest_version_tags("2021-02", "run-feb", True, champion=0, challenger=version)[version]
    registry.tag_version(version, contest)
    replaced = contest_version_tags("2021-05", "run-may", True, champion=version, challenger=9)[version]
    registry.tag_version(version, replaced)
    registry.tag_version(version, replaced)  # a step repeated after a crash changes nothing

    tags = client.get_model_version(registry.model_name, str(version)).tags
    assert set(tags) == {"status", "trained_through", "contest.outcome", DETAILS_TAG}
    assert (tags["status"], tags["contest.outcome"]) == ("production", "promoted over v0")
    details = json.loads(tags[DETAILS_TAG])
    assert list(details)[-6:] == [  # added in the order written, none overwritten
        "contest.month",
        "contest.run_id",
        "promoted_in",
        "archived_in",
        "archived_by_run_id",
        "replaced_by",
    ]
    assert (details["contest.run_id"], details["archived_by_run_id"]) == ("run-feb", "run-may")
    (info,) = registry.versions()
    assert (info.window, info.feature_set, info.status) == (WINDOW, "v1", "production")


def test_a_version_with_the_old_individual_tags_still_reads(tmp_path: Path, mlflow_cache: Path) -> None:
    """A version registered before the JSON tag: every field a tag of its own."""
    registry = _registry(tmp_path, mlflow_cache)
    client = MlflowClient(tracking_uri=registry.tracking_uri)
    run = client.create_run(registry.experiment_id or "")
    old_tags = {"feature_set": "v1", "family": "lightgbm", "device": "cpu", **WINDOW.as_tags()}
    old_tags |= {"status": "production", "contest.month": "2021-02", "contest.outcome": "promoted over v1"}
    created = client.create_model_version(
        registry.model_name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id, tags=old_tags
    )
    version = int(created.version)

    (info,) = registry.versions()
    assert (info.window, info.feature_set, info.status) == (WINDOW, "v1", "production")
    registry.set_alias(CHAMPION, version)
    assert registry.get_by_alias(CHAMPION) == replace(info, aliases=(CHAMPION,))

    replaced = contest_version_tags("2021-05", "run-may", True, champion=version, challenger=9)[version]
    registry.tag_version(version, replaced)  # a later contest adds the JSON tag beside the old ones
    tags = client.get_model_version(registry.model_name, str(version)).tags
    assert old_tags.items() <= tags.items()
    assert json.loads(tags[DETAILS_TAG]) == replaced
    assert unpack_version_tags(tags) == {**old_tags, **replaced}
    (info,) = registry.versions()
    assert (info.window, info.feature_set) == (WINDOW, "v1")


def test_a_fresh_registry_loads_an_xgboost_model_with_the_same_forecasts(
    tmp_path: Path, mlflow_cache: Path
) -> None:
    forecaster = train_forecaster(
        SAMPLES, ModelSettings(family="xgboost", num_boost_round=10, min_data_in_leaf=20)
    )
    version = (
        _registry(tmp_path, mlflow_cache)
        .register(forecaster, WINDOW, params={}, metrics={}, example_features=SAMPLES.head(3), run_name="x")
        .version
    )
    loaded = _registry(tmp_path, mlflow_cache).load(version)
    assert (loaded.family, loaded.device, loaded.feature_set) == ("xgboost", "cpu", "v1")
    np.testing.assert_array_equal(loaded.predict_close(SAMPLES), forecaster.predict_close(SAMPLES))


def test_a_model_with_an_unknown_feature_set_is_refused(tmp_path: Path, mlflow_cache: Path) -> None:
    registry = _registry(tmp_path, mlflow_cache)
    client = MlflowClient(tracking_uri=registry.tracking_uri)
    run = client.create_run(registry.experiment_id)
    path = tmp_path / "model"
    mlflow.lightgbm.save_model(
        FORECASTER.booster, path, pip_requirements=["lightgbm"], metadata={"feature_set": "v99"}
    )
    client.log_artifacts(run.info.run_id, str(path), "model")
    version = client.create_model_version(
        registry.model_name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id, tags=WINDOW.as_tags()
    )
    with pytest.raises(UnknownFeatureSetError, match="v99"):
        registry.load(int(version.version))


def test_embedded_store_is_built_from_a_template_once(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    embedded_tracking_uri(tmp_path / "a", cache)
    templates = list(cache.glob("mlflow-*-empty.db"))
    embedded_tracking_uri(tmp_path / "b", cache)
    assert len(templates) == 1
    assert list(cache.glob("mlflow-*-empty.db")) == templates
    assert (tmp_path / "b" / "mlflow.db").stat().st_size == templates[0].stat().st_size
    assert pd.Timestamp(WINDOW.as_tags()["train_start"]) == WINDOW.train_start
