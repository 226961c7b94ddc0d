"""A command that reads what is there, pointed at a price store that does not exist, says so and how
to point it at the stack's, exits 1, and creates nothing (it used to create an empty store and report
on that: "no sim clock yet" beside a running stack)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from btcmlops.cli import app

RUNNER = CliRunner()

READ_COMMANDS = (
    ["clock", "show"],
    ["clock", "set", "--pause"],
    ["model", "history"],
    ["model", "rollback", "--reason", "test"],
    ["registry", "check"],
    ["registry", "reconcile"],
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BTCMLOPS_STORE__URL", raising=False)
    monkeypatch.delenv("BTCMLOPS_MLFLOW__TRACKING_URI", raising=False)
    monkeypatch.setenv("BTCMLOPS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
def test_a_read_command_without_a_store_says_where_it_looked_and_creates_nothing(
    home: Path, command: list[str]
) -> None:
    result = RUNNER.invoke(app, command)
    assert result.exit_code == 1, result.output
    assert f"no price store at {(home / 'prices.db').resolve()}: set BTCMLOPS_STORE__URL" in result.output
    assert f"`uv run --env-file stack.env btcmlops {' '.join(command[:2])}`" in result.output
    assert not home.exists()  # neither the price store nor an MLflow store was made


def test_a_configured_sqlite_url_to_a_missing_file_is_refused_too(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BTCMLOPS_STORE__URL", f"sqlite:///{tmp_path / 'elsewhere' / 'prices.db'}")
    (tmp_path / "elsewhere").mkdir()
    result = RUNNER.invoke(app, ["clock", "show"])
    assert result.exit_code == 1
    assert f"no price store at {tmp_path / 'elsewhere' / 'prices.db'}" in result.output
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_a_writer_still_creates_the_store_and_then_a_reader_finds_it(home: Path) -> None:
    assert RUNNER.invoke(app, ["clock", "reset", "--paused"]).exit_code == 0
    assert (home / "prices.db").exists()
    result = RUNNER.invoke(app, ["clock", "show"])
    assert result.exit_code == 0, result.output
    assert "paused" in result.output
