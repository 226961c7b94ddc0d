"""Every executor of the replay's fits gives the same replay: forecasts, decisions, versions and tags.

The models are fitted ahead on other processes (``processes``: a spawned pool; ``dask``: a local
Dask cluster of two worker processes) and registered by the replaying process in the serial order, so
nothing a reader sees may depend on where a model was fitted; only run ids and times differ.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from btcmlops.replay import ReplayResult
from btcmlops.settings import Settings
from factories import ReplayOf, make_candles, small_replay

# Four months: v1 trained through February, challengers through March and April, two contests.
START, END = "2021-01-01", "2021-05-31 23:00"

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("executors")]


def _without_run_ids(value: str, run_names: dict[str, str]) -> str:
    """``value`` with each run id of the replay replaced by its run's name (ids differ by run)."""
    return re.sub(r"[0-9a-f]{32}", lambda found: run_names.get(found.group(), "<unknown run>"), value)


def _registry(replay: ReplayResult) -> list[dict[str, Any]]:
    """Each version as a reader of the registry sees it: aliases, tags, description, its run's params."""
    client = MlflowClient(tracking_uri=replay.tracking_uri)
    name = Settings().mlflow.registered_model
    experiment = client.get_experiment_by_name(Settings().mlflow.experiment)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    run_names = {run.info.run_id: run.info.run_name for run in runs}
    versions = sorted(client.search_model_versions(f"name = '{name}'"), key=lambda v: int(v.version))
    return [
        {
            "version": int(version.version),
            "aliases": sorted(version.aliases),
            "tags": {key: _without_run_ids(value, run_names) for key, value in version.tags.items()},
            "description": version.description,
            "run": run_names[version.run_id],
            "params": client.get_run(version.run_id).data.params,
        }
        for version in versions
    ]


def _decided(replay: ReplayResult) -> dict[str, Any]:
    """The summary less what differs by run: timings, where it was written, when it decided."""
    summary: dict[str, Any] = json.loads(replay.summary_path.read_text())
    for key in ("timings", "mlflow", "data"):
        summary.pop(key)
    for decision in summary["decisions"]:
        decision.pop("decided_at", None)
    for training in summary["trainings"]:
        training.pop("run_id")
    return summary


@pytest.fixture(scope="module")
def serial(tmp_path_factory: pytest.TempPathFactory, replay_of: ReplayOf) -> ReplayResult:
    return replay_of(tmp_path_factory.mktemp("serial"), START, END)


@pytest.mark.parametrize("executor", ["processes", "dask"])
def test_an_executor_gives_the_serial_replay(
    executor: str, serial: ReplayResult, tmp_path: Path, mlflow_cache: Path
) -> None:
    executors = {"executor": executor, "workers": 2}
    replay = small_replay(tmp_path, make_candles(START, END), replay=executors, mlflow_cache=mlflow_cache)
    assert [t["trained_through"] for t in replay.summary["trainings"]] == ["2021-02", "2021-03", "2021-04"]
    assert len(replay.summary["decisions"]) == 2
    assert replay.predictions_path.read_bytes() == serial.predictions_path.read_bytes()
    assert _decided(replay) == _decided(serial)
    assert _registry(replay) == _registry(serial)
