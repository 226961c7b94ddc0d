"""``ModelRegistry``: the only code that talks to MLflow about runs, versions and aliases."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow.artifacts
import mlflow.lightgbm
import mlflow.xgboost
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.models import Model, infer_signature

from btcmlops.features import UnknownFeatureSetError, get_feature_set
from btcmlops.model import (
    LIGHTGBM,
    XGBOOST,
    Forecaster,
    IntervalModel,
    ModelConfigurationError,
    import_xgboost,
)
from btcmlops.registry.presentation import EXPERIMENT_TAGS, registered_model_description, with_status
from btcmlops.registry.version_tags import STATUS_TAG, pack_version_tags, unpack_version_tags
from btcmlops.timing import Timings
from btcmlops.training_window import TrainingWindow

CHAMPION = "champion"
CHALLENGER = "challenger"
MODEL_ARTIFACT = "model"
INTERVAL_ARTIFACT = "interval"
INTERVAL_LEVEL = "interval_level"
"""Folder inside the model artifact that holds the interval's boosters and calibration."""
KIND_TAG = "btcmlops.kind"
FAMILY_TAG = "family"
DEVICE_TAG = "device"
_PINNED = ("numpy", "pandas", "mlflow")
"""What loading the model needs besides its library; MLflow checks each pin, so keep it short."""


class VersionStatus(StrEnum):
    """What the seed calls Production / Staging / Archived, kept as the version tag ``status``."""

    PRODUCTION = "production"
    STAGING = "staging"
    ARCHIVED = "archived"


@dataclass(frozen=True)
class ModelVersionInfo:
    """One registered version as the contest and the servers see it."""

    version: int
    run_id: str
    feature_set: str
    window: TrainingWindow
    status: str | None
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class ContestRun:
    """A contest as MLflow recorded it: its run, month, metrics and tags."""

    run_id: str
    month: str
    metrics: dict[str, float]
    tags: dict[str, str]
    status: str
    """MLflow's run status: FINISHED once all of it is logged, RUNNING if its logging was cut off."""


def with_alias(versions: Sequence[ModelVersionInfo], alias: str) -> ModelVersionInfo | None:
    """The version in ``versions`` that carries ``alias``, if any."""
    return next((info for info in versions if alias in info.aliases), None)


@cache
def pinned_requirements(family: str = LIGHTGBM) -> tuple[str, ...]:
    """The model's pip requirements, pinned to what is installed (MLflow's inference costs seconds)."""
    return tuple(f"{name}=={metadata.version(name)}" for name in (family, *_PINNED))


class ModelRegistry:
    """Register forecasters, move aliases, tag status and load versions, on one MLflow store.

    Uses an explicit ``MlflowClient`` and never MLflow's global tracking URI, so two registries (or a
    test and the code under test) cannot leak into each other.
    """

    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        model_name: str,
        *,
        artifact_location: str | None = None,
        timings: Timings | None = None,
        create: bool = True,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.model_name = model_name
        self.experiment_name = experiment
        self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self._timings = timings or Timings()
        self._forecasters: dict[int, Forecaster] = {}
        self.experiment_id: str | None = None
        if create:  # a reader (the inference service) creates nothing and may start before MLflow
            with self._timings.measure("mlflow"):
                self.experiment_id = self._ensure_experiment(artifact_location)
                self._ensure_registered_model()

    # -- set-up ---------------------------------------------------------------------------------------
    def _ensure_experiment(self, artifact_location: str | None) -> str:
        """The experiment's id, creating it if needed, with :data:`EXPERIMENT_TAGS` set on it.

        The tags are set on an existing experiment too (only those that differ), so one made by an
        older version of btcmlops gets them at the next start.
        """
        found = self._client.get_experiment_by_name(self.experiment_name)
        if found is None:
            try:
                return str(
                    self._client.create_experiment(
                        self.experiment_name, artifact_location, tags=dict(EXPERIMENT_TAGS)
                    )
                )
            except MlflowException:  # created meanwhile by another process
                found = self._client.get_experiment_by_name(self.experiment_name)
                if found is None:
                    raise
        experiment_id = str(found.experiment_id)
        current: Mapping[str, str] = found.tags or {}
        for key, value in EXPERIMENT_TAGS.items():
            if current.get(key) != value:
                self._client.set_experiment_tag(experiment_id, key, value)
        return experiment_id

    def _ensure_registered_model(self) -> None:
        """Create the registered model with its description, or bring an existing one's up to date."""
        description = registered_model_description()
        try:
            found = self._client.get_registered_model(self.model_name)
        except MlflowException:
            try:
                self._client.create_registered_model(self.model_name, description=description)
                return
            except MlflowException:
                found = self._client.get_registered_model(self.model_name)  # created meanwhile
        if found.description != description:
            self._client.update_registered_model(self.model_name, description=description)

    def _experiment(self) -> str:
        """The experiment's id; a read-only registry looks it up by name (it creates nothing)."""
        if self.experiment_id is None:
            with self._timings.measure("mlflow"):
                found = self._client.get_experiment_by_name(self.experiment_name)
            if found is None:
                raise LookupError(f"no MLflow experiment named {self.experiment_name!r} yet")
            self.experiment_id = str(found.experiment_id)
        return self.experiment_id

    # -- writing --------------------------------------------------------------------------------------
    def register(
        self,
        forecaster: Forecaster,
        window: TrainingWindow,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        example_features: pd.DataFrame,
        *,
        run_name: str,
        on_step: Callable[[str], None] | None = None,
    ) -> ModelVersionInfo:
        """Log a training run with its window, params and model, and register it as a new version.

        ``on_step`` is called between the MLflow calls (a seam for the crash tests): a process that
        dies after the run is created and before the version exists leaves a run with no version,
        which ``fail_orphan_runs`` closes as FAILED.
        """
        step = on_step or (lambda _name: None)
        model_tags = {
            "feature_set": forecaster.feature_set,
            FAMILY_TAG: forecaster.family,
            DEVICE_TAG: forecaster.device,
        }
        with self._timings.measure("mlflow"):
            tags = {KIND_TAG: "training", **model_tags, **window.as_tags()}
            run = self._client.create_run(self._experiment(), run_name=run_name, tags=tags)
            run_id = run.info.run_id
            step("register.run_created")
            self._client.log_batch(
                run_id,
                params=[Param(key, str(value)) for key, value in params.items()],
                metrics=[Metric(key, float(value), 0, 0) for key, value in metrics.items()],
            )
            columns = list(forecaster.feature_columns)
            signature = infer_signature(
                example_features[columns], forecaster.predict_log_return(example_features)
            )
            with tempfile.TemporaryDirectory() as scratch:
                path = Path(scratch) / MODEL_ARTIFACT
                flavor = mlflow.xgboost if forecaster.family == XGBOOST else mlflow.lightgbm
                flavor.save_model(
                    forecaster.booster,
                    path,
                    signature=signature,
                    pip_requirements=list(pinned_requirements(forecaster.family)),
                    metadata={
                        "feature_set": forecaster.feature_set,
                        FAMILY_TAG: forecaster.family,
                        DEVICE_TAG: forecaster.device,
                        **(
                            {} if forecaster.interval is None else {INTERVAL_LEVEL: forecaster.interval.level}
                        ),
                    },
                )
                if forecaster.interval is not None:  # one artifact: the point and its interval
                    forecaster.interval.save(path / INTERVAL_ARTIFACT)
                self._client.log_artifacts(run_id, str(path), MODEL_ARTIFACT)
            step("register.artifacts_logged")
            version = self._client.create_model_version(
                self.model_name,
                # Where the artifacts are, not ``runs:/``: the server resolves a ``runs:/`` source through
                # its own tracking store to an ``mlflow-artifacts:`` URI it then refuses to read without
                # an http tracking URI, so the UI's get-artifact call for a version answered 500.
                source=f"{run.info.artifact_uri}/{MODEL_ARTIFACT}",
                run_id=run_id,
                tags=pack_version_tags({**model_tags, **window.as_tags()}),
            )
            step("register.version_created")
            self._client.set_terminated(run_id)
        number = int(version.version)
        self._forecasters[number] = forecaster
        return ModelVersionInfo(number, run_id, forecaster.feature_set, window, None, ())

    def set_alias(self, alias: str, version: int) -> None:
        """Point ``alias`` at ``version`` (MLflow moves it off any other version)."""
        with self._timings.measure("mlflow"):
            self._client.set_registered_model_alias(self.model_name, alias, str(version))

    def delete_alias(self, alias: str) -> None:
        """Remove ``alias``; removing one that is not set is not an error (steps are repeated)."""
        with self._timings.measure("mlflow"):
            aliases = self._client.get_registered_model(self.model_name).aliases or {}
            if alias in aliases:
                self._client.delete_registered_model_alias(self.model_name, alias)

    def set_status(self, version: int, status: VersionStatus) -> None:
        """Set a version's ``status`` tag, and the paragraph of its description that says what it is now."""
        with self._timings.measure("mlflow"):
            self._client.set_model_version_tag(self.model_name, str(version), STATUS_TAG, status.value)
            current = self._client.get_model_version(self.model_name, str(version)).description or ""
            described = with_status(current, status.value)
            if described != current:
                self._client.update_model_version(self.model_name, str(version), description=described)

    def describe_version(self, version: int, description: str) -> None:
        """Set a version's description (shown on its page in the MLflow UI)."""
        with self._timings.measure("mlflow"):
            self._client.update_model_version(self.model_name, str(version), description=description)

    def tag_version(self, version: int, fields: Mapping[str, str]) -> None:
        """Record ``fields`` on a version: the scanned ones as tags, the rest merged into its JSON tag.

        See :mod:`btcmlops.registry.version_tags`. Repeating it with the same fields changes nothing.
        """
        with self._timings.measure("mlflow"):
            current = self._client.get_model_version(self.model_name, str(version)).tags or {}
            for key, value in pack_version_tags(fields, current).items():
                if current.get(key) != value:
                    self._client.set_model_version_tag(self.model_name, str(version), key, value)

    def log_contest(
        self,
        run_name: str,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        tags: Mapping[str, str],
        *,
        run_id: str | None = None,
    ) -> str:
        """Record one contest decision as its own run; returns the run id.

        ``run_id`` is a contest run created before whose logging was cut off (a crash or an MLflow
        error between its calls): its params and metrics, the same values, are logged and it is closed.
        """
        with self._timings.measure("mlflow"):
            if run_id is None:
                run = self._client.create_run(
                    self._experiment(), run_name=run_name, tags={KIND_TAG: "contest", **tags}
                )
                run_id = str(run.info.run_id)
            self._client.log_batch(
                run_id,
                params=[Param(key, str(value)) for key, value in params.items()],
                metrics=[Metric(key, float(value), 0, 0) for key, value in metrics.items()],
            )
            self._client.set_terminated(run_id)
            return run_id

    def fail_orphan_runs(self) -> list[str]:
        """Close as FAILED the training runs that never became a version (a crash mid-register).

        Returns their run ids. A run still open that has a version (a crash just before closing it)
        is closed as FINISHED.
        """
        with self._timings.measure("mlflow"):
            runs = self._client.search_runs(
                [self._experiment()],
                filter_string=f"tags.`{KIND_TAG}` = 'training' and attributes.status = 'RUNNING'",
                max_results=1000,
            )
            if not runs:
                return []
            registered = {
                str(v.run_id) for v in self._client.search_model_versions(f"name = '{self.model_name}'")
            }
            failed = []
            for run in runs:
                run_id = str(run.info.run_id)
                if run_id in registered:
                    self._client.set_terminated(run_id)
                else:
                    self._client.set_terminated(run_id, status="FAILED")
                    failed.append(run_id)
            return failed

    # -- reading --------------------------------------------------------------------------------------
    def contest_runs(self, month: str | None = None) -> list[ContestRun]:
        """The contest runs logged (for one month, or all), oldest first."""
        query = f"tags.`{KIND_TAG}` = 'contest'"
        if month is not None:
            query += f" and tags.month = '{month}'"
        with self._timings.measure("mlflow"):
            runs = self._client.search_runs(
                [self._experiment()],
                filter_string=query,
                max_results=5000,
                order_by=["attributes.start_time ASC"],
            )
        return [
            ContestRun(
                run_id=str(run.info.run_id),
                month=str(run.data.tags.get("month", "")),
                metrics=dict(run.data.metrics),
                tags=dict(run.data.tags),
                status=str(run.info.status),
            )
            for run in runs
        ]

    def fit_seconds(self) -> dict[str, float]:
        """Each training run's fit time (``train_seconds``), by run name.

        A training run is named for its training window, so two stores that trained the same months on
        the same data compare fit for fit: the stack's trainer against a quiet replay (bench/stack_fit.py,
        the compose test). A run that failed before its metrics were logged has no fit time.
        """
        with self._timings.measure("mlflow"):
            runs = self._client.search_runs(
                [self._experiment()],
                filter_string=f"tags.`{KIND_TAG}` = 'training' and metrics.train_seconds >= 0",
                max_results=5000,
            )
        return {str(run.info.run_name): float(run.data.metrics["train_seconds"]) for run in runs}

    def get_by_alias(self, alias: str) -> ModelVersionInfo | None:
        """The version ``alias`` points at, or None if the alias is not set."""
        with self._timings.measure("mlflow"):
            try:
                found = self._client.get_model_version_by_alias(self.model_name, alias)
            except MlflowException as error:
                if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                    return None
                raise
        return _version_info(found)

    def versions(self) -> list[ModelVersionInfo]:
        """Every version of the registered model, oldest first."""
        with self._timings.measure("mlflow"):
            found = self._client.search_model_versions(f"name = '{self.model_name}'")
            aliases = self._client.get_registered_model(self.model_name).aliases or {}
        by_version: dict[int, list[str]] = {}
        for alias, version in aliases.items():  # search results carry no aliases; the model does
            by_version.setdefault(int(version), []).append(alias)
        infos = (_version_info(item, by_version.get(int(item.version), ())) for item in found)
        return sorted(infos, key=lambda info: info.version)

    def load(self, version: int) -> Forecaster:
        """Load ``version`` as a forecaster, refusing one whose feature set this code cannot build."""
        if version in self._forecasters:
            return self._forecasters[version]
        with self._timings.measure("mlflow"), tempfile.TemporaryDirectory() as scratch:
            uri = self._client.get_model_version_download_uri(self.model_name, str(version))
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=uri, dst_path=scratch, tracking_uri=self.tracking_uri
            )
            model = Model.load(local)
            feature_set = (model.metadata or {}).get("feature_set")
            if not isinstance(feature_set, str):
                raise UnknownFeatureSetError(f"version {version} does not say which feature set it uses")
            get_feature_set(feature_set)
            # Versions from before the XGBoost family say nothing: they are LightGBM, fitted on the CPU.
            family = (model.metadata or {}).get(FAMILY_TAG, LIGHTGBM)
            device = str((model.metadata or {}).get(DEVICE_TAG, "cpu"))
            if family not in (LIGHTGBM, XGBOOST):
                raise ModelConfigurationError(f"version {version} is of an unknown model family {family!r}")
            if family == XGBOOST:
                import_xgboost()  # a clear error where the extra is not installed
                booster = mlflow.xgboost.load_model(local)
                # One thread, as the LightGBM models record: forecasts are a few rows, on shared cores.
                booster.set_param({"device": "cpu", "nthread": 1})
            else:
                booster = mlflow.lightgbm.load_model(local)
            interval_dir = Path(local) / INTERVAL_ARTIFACT
            interval = IntervalModel.load(interval_dir) if interval_dir.is_dir() else None
        forecaster = Forecaster(
            booster=booster, feature_set=feature_set, family=family, device=device, interval=interval
        )
        self._forecasters[version] = forecaster
        return forecaster


def _version_info(version: Any, aliases: Sequence[str] | None = None) -> ModelVersionInfo:
    tags = unpack_version_tags(dict(version.tags or {}))
    return ModelVersionInfo(
        version=int(version.version),
        run_id=str(version.run_id),
        feature_set=tags.get("feature_set", ""),
        window=TrainingWindow.from_tags(tags),
        status=tags.get(STATUS_TAG),
        aliases=tuple(sorted(aliases if aliases is not None else getattr(version, "aliases", None) or ())),
    )
