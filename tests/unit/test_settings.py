"""Settings by their old names: still read, each with one warning naming what to set instead."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from btcmlops.cli import app
from btcmlops.settings import Settings


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    for name in ("BTCMLOPS_CLOCK__API_KEY", "BTCMLOPS_SERVE__CONTROL_KEY", "BTCMLOPS_SERVE__WORKERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BTCMLOPS_HOME", str(tmp_path / "home"))
    return tmp_path


def test_the_old_control_key_variable_still_works_with_a_warning_naming_the_new_one(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BTCMLOPS_CLOCK__API_KEY", "k3y-from-a-vault")
    settings = Settings()
    assert settings.serve.control_key is not None
    assert settings.serve.control_key.get_secret_value() == "k3y-from-a-vault"
    assert settings.deprecations == [
        "BTCMLOPS_CLOCK__API_KEY is deprecated: set BTCMLOPS_SERVE__CONTROL_KEY instead (same value)"
    ]
    assert settings.model_copy(update={"demo": True}).deprecations == settings.deprecations


def test_the_new_name_wins_over_the_old_one(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BTCMLOPS_CLOCK__API_KEY", "old-key")
    monkeypatch.setenv("BTCMLOPS_SERVE__CONTROL_KEY", "new-key")
    settings = Settings()
    assert settings.serve.control_key is not None
    assert settings.serve.control_key.get_secret_value() == "new-key"
    assert "BTCMLOPS_CLOCK__API_KEY is deprecated and ignored" in settings.deprecations[0]


def test_the_old_name_in_a_dotenv_file_is_read_too(clean_env: Path) -> None:
    (clean_env / ".env").write_text("BTCMLOPS_CLOCK__API_KEY=from-dotenv\n")
    settings = Settings()
    assert settings.serve.control_key is not None
    assert settings.serve.control_key.get_secret_value() == "from-dotenv"
    assert len(settings.deprecations) == 1


def test_serve_workers_is_gone_and_says_why(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BTCMLOPS_SERVE__WORKERS", "4")
    settings = Settings()
    assert "workers" not in type(settings.serve).model_fields
    [note] = settings.deprecations
    assert note.startswith("BTCMLOPS_SERVE__WORKERS is no longer read")
    assert "one uvicorn process" in note


def test_nothing_old_set_no_warning(clean_env: Path) -> None:
    assert Settings().deprecations == []


def test_the_cli_prints_each_warning_once_and_still_runs(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BTCMLOPS_CLOCK__API_KEY", "k3y-from-a-vault")
    monkeypatch.setenv("BTCMLOPS_SERVE__WORKERS", "2")
    result = CliRunner().invoke(app, ["health", "--heartbeat", str(clean_env / "missing")])
    assert result.exit_code == 1  # the command itself ran: no heartbeat file
    assert result.output.count("BTCMLOPS_CLOCK__API_KEY is deprecated: set BTCMLOPS_SERVE__CONTROL_KEY") == 1
    assert result.output.count("BTCMLOPS_SERVE__WORKERS is no longer read") == 1
