"""The ``btcmlops`` command line as a user runs it (Typer's runner, real stores in a temp dir)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from btcmlops.cli import app
from btcmlops.model import Forecaster
from btcmlops.registry import ModelRegistry
from btcmlops.replay.run import ARTIFACTS_DIR, _rebase_artifact_paths
from btcmlops.settings import Settings
from factories import OncePerRun, make_candles, share_mlflow_template, write_project_csv

RUNNER = CliRunner()


MARKET = make_candles("2021-01-01", "2021-04-30 23:00", ar=0.4)
"""The market the replay tests simulate: v1 on January and February, a decision in April."""


def _user_settings(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    monkeypatch.chdir(folder)
    monkeypatch.setenv("BTCMLOPS_HOME", str(folder / "home"))
    monkeypatch.setenv("BTCMLOPS_CONTEST__FIRST_TRAIN_MONTHS", "2")
    monkeypatch.setenv("BTCMLOPS_MODEL__NUM_BOOST_ROUND", "30")
    monkeypatch.setenv("BTCMLOPS_MODEL__MIN_DATA_IN_LEAF", "20")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings for the CLI come from BTCMLOPS_* variables, as for a user; all state in tmp_path."""
    _user_settings(monkeypatch, tmp_path)
    return tmp_path


@dataclass(frozen=True)
class Simulated:
    """What ``btcmlops simulate --data candles.csv --out out`` of ``MARKET`` printed, and where."""

    exit_code: int
    output: str
    out: Path


@pytest.fixture
def simulated(once_per_run: OncePerRun, mlflow_cache: Path) -> Simulated:
    """``btcmlops simulate`` of ``MARKET``, run once per test run (a replay trains a model per month):
    the tests of what it prints read its output, the tests that change a replay take a copy
    (``copy_simulated``)."""

    def simulate(folder: Path) -> tuple[int, str, str]:
        with pytest.MonkeyPatch.context() as monkeypatch:
            _user_settings(monkeypatch, folder)
            share_mlflow_template(folder / "home", mlflow_cache)
            data = folder / "candles.csv"
            write_project_csv(MARKET, str(data))
            result = RUNNER.invoke(app, ["simulate", "--data", str(data), "--out", str(folder / "out")])
        return result.exit_code, result.output, str(folder / "out")

    exit_code, output, out = once_per_run("cli-simulate", simulate)
    return Simulated(exit_code, output, Path(out))


def copy_simulated(simulated: Simulated, env: Path) -> Path:
    """``env/out``: a copy of the run's simulated replay, as if ``simulate`` had written it there (its
    MLflow store names the copy's artifacts, with the rebase a replay moved aside gets); and the data file
    it read, at ``env/candles.csv``."""
    write_project_csv(MARKET, str(env / "candles.csv"))
    out = env / "out"
    shutil.copytree(simulated.out, out)
    _rebase_artifact_paths(
        out / "mlflow.db", simulated.out.resolve() / ARTIFACTS_DIR, out.resolve() / ARTIFACTS_DIR
    )
    return out


def test_simulate_prints_history_scores_report_and_mlflow_command(simulated: Simulated) -> None:
    result = simulated

    assert result.exit_code == 0, result.output
    assert "Champion history" in result.output
    assert "served MAE" in result.output
    assert "naive" in result.output
    assert "report.html" in result.output
    assert "mlflow ui --backend-store-uri sqlite:///" in result.output
    summary = json.loads((simulated.out / "summary.json").read_text())
    assert [d["month"] for d in summary["decisions"]] == ["2021-04"]
    # printed to a pipe, not a terminal: the decision table's cells whole, not cut at 80 columns
    table = result.output.split("Contest decisions", 1)[1].split("served MAE", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("│")]  # the header's are "┃"
    assert len(rows) == 1, table  # the one month
    assert "…" not in table, table
    assert "2021-04" in rows[0], table
    assert f"v{summary['decisions'][0]['challenger_version']} " in rows[0], table


def test_simulate_refuses_a_bad_file_with_line_and_field(env: Path) -> None:
    data = env / "bad.csv"
    write_project_csv(make_candles("2021-01-01", "2021-01-03"), str(data))
    lines = data.read_text().splitlines()
    fields = lines[5].split(",")
    fields[2] = "abc"  # high
    lines[5] = ",".join(fields)
    data.write_text("\n".join(lines) + "\n")

    result = RUNNER.invoke(app, ["simulate", "--data", str(data), "--out", str(env / "out")])

    assert result.exit_code == 1
    assert "bad.csv:6" in result.output
    assert "high" in result.output


def test_data_load_twice_changes_nothing(env: Path) -> None:
    data = env / "candles.csv"
    write_project_csv(make_candles("2021-01-01", "2021-01-03 23:00", drop=("2021-01-02 05:00",)), str(data))

    first = RUNNER.invoke(app, ["data", "load", str(data)])
    second = RUNNER.invoke(app, ["data", "load", str(data)])

    assert first.exit_code == 0, first.output
    assert "inserted 71" in first.output
    assert "gap" in first.output
    assert "2021-01-02 05:00" in first.output
    assert second.exit_code == 0
    assert "inserted 0, updated 0, unchanged 71" in second.output


def test_health_checks_a_heartbeat_file_for_its_age(tmp_path: Path) -> None:
    import os
    import time

    beat = tmp_path / "heartbeat"
    runner = CliRunner()
    missing = runner.invoke(app, ["health", "--heartbeat", str(beat)])
    beat.touch()
    fresh = runner.invoke(app, ["health", "--heartbeat", str(beat), "--max-age", "60"])
    os.utime(beat, (time.time() - 120, time.time() - 120))
    stale = runner.invoke(app, ["health", "--heartbeat", str(beat), "--max-age", "60"])

    assert (missing.exit_code, fresh.exit_code, stale.exit_code) == (1, 0, 1)
    assert "no heartbeat file" in missing.output
    assert "last heartbeat 120 s ago" in stale.output


def test_health_of_a_url_that_does_not_answer_is_unhealthy() -> None:
    from services import free_port

    result = CliRunner().invoke(app, ["health", f"http://127.0.0.1:{free_port()}/healthz", "--timeout", "2"])
    assert result.exit_code == 1
    assert "unhealthy" in result.output
    assert CliRunner().invoke(app, ["health"]).exit_code == 2


def test_model_promote_rollback_history_and_registry_check_on_a_replay(
    env: Path, simulated: Simulated
) -> None:
    assert simulated.exit_code == 0, simulated.output
    out = copy_simulated(simulated, env)
    champion = json.loads((out / "summary.json").read_text())["final_champion"]
    other = 1 if champion == 2 else 2

    check = RUNNER.invoke(app, ["registry", "check", "--replay", str(out)])
    assert check.exit_code == 0, check.output
    assert "registry sound" in check.output

    promoted = RUNNER.invoke(app, ["model", "promote", str(other), "--reason", "demo", "--replay", str(out)])
    assert promoted.exit_code == 0, promoted.output
    assert f"-> v{other}" in promoted.output
    refused = RUNNER.invoke(app, ["model", "promote", str(other), "--reason", "again", "--replay", str(out)])
    assert refused.exit_code == 1
    assert "already the champion" in refused.output

    back = RUNNER.invoke(app, ["model", "rollback", "--reason", "undo the demo", "--replay", str(out)])
    assert back.exit_code == 0, back.output
    history = RUNNER.invoke(app, ["model", "history", "--replay", str(out)])
    assert history.exit_code == 0, history.output
    lines = [line for line in history.output.splitlines() if line.startswith("#")]
    assert "contest:" in lines[0]  # by the contest, said once (not "contest by contest")
    assert "contest by contest" not in history.output
    assert f"v{champion} -> v{other}  manual by" in lines[-2]
    assert lines[-2].endswith(": demo")
    assert f"v{other} -> v{champion}  manual by" in lines[-1]
    assert lines[-1].endswith(": undo the demo")
    assert RUNNER.invoke(app, ["registry", "check", "--replay", str(out)]).exit_code == 0


def test_simulate_keeps_the_replay_it_replaces_with_its_hand_changes_beside_it(
    env: Path, simulated: Simulated, mlflow_cache: Path
) -> None:
    """``make demo`` twice: the first replay, promoted by hand, moves to out.previous and still works."""
    first = simulated  # the first replay, copied here as if made here
    assert first.exit_code == 0, first.output
    assert "previous:" not in first.output  # nothing was there to keep
    out, previous = copy_simulated(simulated, env), env / "out.previous"
    data = env / "candles.csv"
    champion = json.loads((out / "summary.json").read_text())["final_champion"]
    other = 1 if champion == 2 else 2
    by_hand = ["model", "promote", str(other), "--reason", "by hand", "--replay", str(out)]
    assert RUNNER.invoke(app, by_hand).exit_code == 0
    (out / "notes.txt").write_text("mine")
    (previous / "stale").mkdir(parents=True)  # an older generation: replaced

    share_mlflow_template(env / "home", mlflow_cache)
    second = RUNNER.invoke(app, ["simulate", "--data", str(data), "--out", str(out)])

    assert second.exit_code == 0, second.output
    assert f"previous:    {previous}  (the replay {out} held, as it was left)" in second.output
    assert not (previous / "stale").exists()
    assert (out / "notes.txt").read_text() == "mine"  # only the replay's own files move
    history = RUNNER.invoke(app, ["model", "history", "--replay", str(previous)])
    assert history.exit_code == 0, history.output
    assert [line for line in history.output.splitlines() if line.startswith("#")][-1].endswith(": by hand")
    assert "by hand" not in RUNNER.invoke(app, ["model", "history", "--replay", str(out)]).output
    # The moved MLflow store names its own artifacts: its champion loads from out.previous.
    registry = ModelRegistry(
        f"sqlite:///{previous / 'mlflow.db'}",
        Settings().mlflow.experiment,
        Settings().mlflow.registered_model,
    )
    shutil.rmtree(out / "mlartifacts")
    assert isinstance(registry.load(other), Forecaster)
    assert RUNNER.invoke(app, ["registry", "check", "--replay", str(previous)]).exit_code == 0


@pytest.mark.parametrize("command", [["serve"], ["feed"], ["trainer"], ["init"]])
def test_a_service_refuses_to_start_with_a_placeholder_secret_unless_in_demo_mode(
    env: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("BTCMLOPS_SERVE__CONTROL_KEY", "change-me-control-key")  # as copied from .env.example
    monkeypatch.setenv("BTCMLOPS_STORE__URL", "mysql+pymysql://btcmlops:change-me@127.0.0.1:1/prices")

    result = RUNNER.invoke(app, command)

    assert result.exit_code == 2, result.output
    assert "refusing to start" in result.output
    assert "BTCMLOPS_SERVE__CONTROL_KEY, BTCMLOPS_STORE__URL (its password)" in result.output
    assert "BTCMLOPS_DEMO=true" in result.output


def test_placeholders_are_known_values_only_and_demo_mode_accepts_them() -> None:
    from btcmlops.settings import Settings

    assert Settings(
        serve={"control_key": "demo"}, s3={"secret_access_key": "Change-Me-minio"}
    ).placeholder_secrets() == [
        "BTCMLOPS_SERVE__CONTROL_KEY",
        "BTCMLOPS_S3__SECRET_ACCESS_KEY",
    ]
    assert Settings(serve={"control_key": "demo"}, demo=True).placeholder_secrets() == []
    assert Settings(serve={"control_key": "k3y-from-a-vault-4f9a"}).placeholder_secrets() == []


@pytest.mark.parametrize("command", [["simulate"], ["trainer"]])
def test_cuda_with_lightgbm_is_a_configuration_error(
    env: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("BTCMLOPS_MODEL__DEVICE", "cuda")

    result = RUNNER.invoke(app, command)

    assert result.exit_code == 2, result.output
    assert "configuration error: BTCMLOPS_MODEL" in result.output
    assert "device=cuda needs family=xgboost" in result.output


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="a GPU machine: cuda is there")
@pytest.mark.parametrize("command", [["simulate"], ["trainer"]])
def test_cuda_without_a_gpu_stops_before_anything_starts(
    env: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    """Real: this machine has no GPU, and XGBoost's CUDA build says so only by a warning and a CPU fit."""
    monkeypatch.setenv("BTCMLOPS_MODEL__FAMILY", "xgboost")
    monkeypatch.setenv("BTCMLOPS_MODEL__DEVICE", "cuda")
    monkeypatch.setenv("BTCMLOPS_STORE__URL", "mysql+pymysql://nobody@127.0.0.1:1/none")  # never reached

    result = RUNNER.invoke(app, command)

    assert result.exit_code == 2, result.output
    assert "BTCMLOPS_MODEL__DEVICE=cuda but XGBoost" in result.output
    assert "set BTCMLOPS_MODEL__DEVICE=cpu" in result.output
    assert not (env / "home").exists()


def test_simulate_refuses_a_scheduler_without_the_dask_executor(env: Path) -> None:
    result = RUNNER.invoke(
        app, ["simulate", "--scheduler", "tcp://127.0.0.1:8786", "--out", str(env / "out")]
    )
    assert result.exit_code == 2
    assert "--executor dask" in result.output
    assert not (env / "out").exists()


def test_the_executor_options_take_the_place_of_the_settings() -> None:
    from btcmlops.cli.replay import Executor, with_executor

    configured = Settings(replay={"executor": "processes", "workers": 3})
    assert with_executor(configured, None, None, None).replay == configured.replay
    chosen = with_executor(configured, Executor.DASK, "tcp://10.0.0.2:8786", None).replay
    assert (chosen.executor, chosen.scheduler, chosen.workers) == ("dask", "tcp://10.0.0.2:8786", 3)
