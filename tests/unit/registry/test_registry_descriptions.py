"""The registry writes the UI's texts: experiment tags, the model's description, version notes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from mlflow import MlflowClient

from btcmlops.registry import (
    ModelRegistry,
    VersionStatus,
    embedded_artifact_location,
    embedded_tracking_uri,
)
from btcmlops.registry.presentation import (
    EXPERIMENT_TAGS,
    registered_model_description,
    version_description,
)
from btcmlops.registry.version_tags import DETAILS_TAG

EXPERIMENT, MODEL = "descriptions-test", "descriptions-test-model"


def _registry(directory: Path, cache: Path) -> ModelRegistry:
    return ModelRegistry(
        embedded_tracking_uri(directory, cache),
        EXPERIMENT,
        MODEL,
        artifact_location=embedded_artifact_location(directory),
    )


def test_a_new_experiment_and_model_get_their_tags_and_description(
    tmp_path: Path, mlflow_cache: Path
) -> None:
    registry = _registry(tmp_path, mlflow_cache)
    client = MlflowClient(tracking_uri=registry.tracking_uri)
    assert registry.experiment_id is not None
    assert EXPERIMENT_TAGS.items() <= client.get_experiment(registry.experiment_id).tags.items()
    assert client.get_registered_model(MODEL).description == registered_model_description()


def test_an_existing_experiment_and_model_are_brought_up_to_date(tmp_path: Path, mlflow_cache: Path) -> None:
    uri = embedded_tracking_uri(tmp_path, mlflow_cache)
    client = MlflowClient(tracking_uri=uri)
    # As an older btcmlops left them: no tags, the old one-line description, and a user's own tag.
    experiment_id = client.create_experiment(
        EXPERIMENT, embedded_artifact_location(tmp_path), tags={"mlflow.experimentKind": "genai_development"}
    )
    client.set_experiment_tag(experiment_id, "owner", "ops")
    client.create_registered_model(MODEL, description="Next-hour BTC/USDT close forecaster (btcmlops).")

    registry = _registry(tmp_path, mlflow_cache)

    assert registry.experiment_id == experiment_id
    tags = client.get_experiment(experiment_id).tags
    assert EXPERIMENT_TAGS.items() <= tags.items()
    assert tags["owner"] == "ops"  # tags btcmlops does not own are left alone
    assert client.get_registered_model(MODEL).description == registered_model_description()


def test_versions_get_a_description_and_tags(tmp_path: Path, mlflow_cache: Path) -> None:
    registry = _registry(tmp_path, mlflow_cache)
    client = MlflowClient(tracking_uri=registry.tracking_uri)
    run = client.create_run(registry.experiment_id or "")
    version = int(client.create_model_version(MODEL, "runs:/x/model", run_id=run.info.run_id).version)

    registry.describe_version(version, "Trained through **2024-01**.")
    registry.tag_version(
        version,
        {
            "contest.month": "2024-03",
            "contest.outcome": "archived, v1 stays champion",
            "archived_in": "2024-03",
        },
    )

    found = client.get_model_version(MODEL, str(version))
    assert found.description == "Trained through **2024-01**."
    assert found.tags == {
        "contest.outcome": "archived, v1 stays champion",
        DETAILS_TAG: '{"contest.month": "2024-03", "archived_in": "2024-03"}',
    }


def test_a_versions_description_follows_its_status(tmp_path: Path, mlflow_cache: Path) -> None:
    """A promoted challenger must not keep saying it is in shadow and never served."""
    registry = _registry(tmp_path, mlflow_cache)
    client = MlflowClient(tracking_uri=registry.tracking_uri)
    run = client.create_run(registry.experiment_id or "")
    version = int(client.create_model_version(MODEL, "runs:/x/model", run_id=run.info.run_id).version)
    window = (pd.Timestamp("2023-01-01"), pd.Timestamp("2024-01-31 23:00"), 9000)
    registry.describe_version(version, version_description("2024-01", "challenger", *window))
    registry.set_status(version, VersionStatus.STAGING)

    def description() -> str:
        return str(client.get_model_version(MODEL, str(version)).description)

    assert "Now: the **challenger**" in description()
    assert "not served" in description()

    registry.set_status(version, VersionStatus.PRODUCTION)
    promoted = description()
    assert "Now: the **champion** (status `production`" in promoted
    assert "not served" not in promoted
    assert "never served" not in promoted
    assert promoted.startswith("Trained through 2024-01 as the challenger")  # the history stays

    registry.set_status(version, VersionStatus.ARCHIVED)
    assert "Now: **archived**" in description()
    assert description().count("Now: ") == 1
