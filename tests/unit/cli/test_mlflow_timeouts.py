"""MLflow's HTTP settings (retries off, a timeout): written by the ``btcmlops`` process entry point only.

MLflow reads them from the environment, so a command that talks to MLflow needs them there; a process
started as ``btcmlops`` (``btcmlops.cli:main``) writes them once, and a command invoked in-process
(``CliRunner``, as the tests do) writes nothing, so nothing leaks from one test into the next.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from btcmlops.cli import app, main
from btcmlops.cli.common import ProcessEntry

MLFLOW_HTTP = ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES")


@pytest.fixture
def no_mlflow_http(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in MLFLOW_HTTP:
        monkeypatch.setenv(name, "")  # recorded, so the teardown puts back what was there (or nothing)
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BTCMLOPS_HOME", str(tmp_path / "home"))


def test_the_registry_timeout_becomes_mlflows_http_timeout_without_retries() -> None:
    environ: dict[str, str] = {}
    ProcessEntry(environ).mlflow_http(timeout_s=3.0)
    assert environ == {"MLFLOW_HTTP_REQUEST_TIMEOUT": "3", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}


def test_an_operators_own_mlflow_setting_wins() -> None:
    environ = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "60", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2"}
    ProcessEntry(environ).mlflow_http(timeout_s=0.2)
    assert environ == {"MLFLOW_HTTP_REQUEST_TIMEOUT": "60", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2"}


@pytest.mark.usefixtures("no_mlflow_http")
def test_commands_invoked_in_process_leave_the_environment_as_it_was() -> None:
    import sklearn  # noqa: F401  (scikit-learn sets KMP_* variables when first imported; not ours)

    before = dict(os.environ)
    runner = CliRunner()
    for command in (
        ["model", "history"],
        ["model", "rollback", "--reason", "test"],
        ["registry", "check"],
        ["registry", "reconcile"],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 1, (command, result.output)
    assert dict(os.environ) == before


@pytest.mark.usefixtures("no_mlflow_http")
def test_the_console_script_writes_them_once_before_the_command_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "argv", ["btcmlops", "registry", "check"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 1  # no price store here
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "60"
