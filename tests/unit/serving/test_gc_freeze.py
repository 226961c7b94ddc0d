"""``gc.freeze()`` once per process, at the serve entry point before the server runs; an app started
(and started again) in a process freezes nothing itself."""

from __future__ import annotations

import gc
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import btcmlops.serving
import btcmlops.serving.server
from btcmlops.cli import app

Serve = Callable[..., AbstractContextManager[TestClient]]


@pytest.fixture
def unfrozen() -> None:
    gc.unfreeze()


@pytest.mark.usefixtures("unfrozen")
def test_starting_the_app_twice_in_a_process_freezes_nothing(serve: Serve) -> None:
    for _ in range(2):
        with serve() as client:
            assert client.get("/readyz").status_code == 200
            assert gc.get_freeze_count() == 0


@pytest.mark.usefixtures("unfrozen")
def test_btcmlops_serve_freezes_once_before_the_server_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    frozen_at_start: list[int] = []
    built: list[int] = []

    def create_app(settings: Any) -> object:
        built.append(gc.get_freeze_count())
        return object()

    def run_server(application: object, settings: Any, *, host: str, port: int) -> None:
        frozen_at_start.append(gc.get_freeze_count())

    monkeypatch.setattr(btcmlops.serving, "create_app", create_app)
    monkeypatch.setattr(btcmlops.serving.server, "run_server", run_server)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["serve", "--replay", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert built == [0]  # nothing frozen before the app is built ...
    assert frozen_at_start[0] > 0  # ... and everything by the time the server runs
    gc.unfreeze()
