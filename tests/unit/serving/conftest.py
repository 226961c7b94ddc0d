"""One small replay for the tests that feed the service bad input; each app runs on its own copy."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from btcmlops.replay import ReplayResult
from btcmlops.serving import create_app
from btcmlops.settings import Settings
from factories import ReplayOf
from services import idle_watch, wait_ready

CONTROL_KEY = "test-key"

SettingsCopy = Callable[..., Settings]
Serve = Callable[..., AbstractContextManager[TestClient]]


@pytest.fixture(scope="session")
def inputs_replay(tmp_path_factory: pytest.TempPathFactory, replay_of: ReplayOf) -> ReplayResult:
    """Jan-Apr 2021: v1 trained on Jan-Feb, a challenger after each month (some promoted)."""
    home = tmp_path_factory.mktemp("inputs")
    return replay_of(home, "2021-01-01", "2021-04-30 23:00", ar=0.3, num_boost_round=10)


@pytest.fixture
def control_key() -> str:
    return CONTROL_KEY


def settings_on_a_copy(replay: ReplayResult, directory: Path, **groups: dict[str, Any]) -> Settings:
    """Settings of a service on copies of the replay's price store and MLflow database in ``directory``.

    The artifacts stay where they are (the database names them by absolute path), so a test may change
    the clock, the log and the champion alias without touching another test's stores. ``groups`` are
    settings groups, merged over the test defaults. Copied once per directory: a second call (``serve``
    after ``settings_copy``) finds what the test changed.
    """
    for name in ("prices.db", "mlflow.db"):
        if not (directory / name).exists():
            shutil.copy(replay.out_dir / name, directory / name)
    serve = {
        "poll_interval_s": 0.05,
        "log_flush_interval_s": 0.05,
        "control_key": CONTROL_KEY,
        # Pages on a thread: read workers would cost every app that serves a page seconds of imports in
        # new processes; tests/unit/serving/test_read_workers.py and the integration tests run them.
        "read_workers": 0,
        **groups.pop("serve", {}),
    }
    clock = {"start": "2021-03-10T00:00:00Z", **groups.pop("clock", {})}
    return Settings(
        home=directory,
        store={"url": f"sqlite:///{directory / 'prices.db'}"},
        mlflow={"tracking_uri": f"sqlite:///{directory / 'mlflow.db'}"},
        serve=serve,
        clock=clock,
        **groups,
    )


@pytest.fixture
def settings_copy(inputs_replay: ReplayResult, tmp_path: Path) -> SettingsCopy:
    """``settings_copy(**groups)``: settings on this test's own copy of the stores."""
    return lambda **groups: settings_on_a_copy(inputs_replay, tmp_path, **groups)


@pytest.fixture(scope="module")
def shared_client(
    inputs_replay: ReplayResult, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """One service for a module's tests that change nothing (bad input is refused before any change)."""
    settings = settings_on_a_copy(inputs_replay, tmp_path_factory.mktemp("shared"), serve=idle_watch())
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        yield client


@pytest.fixture
def serve(settings_copy: SettingsCopy) -> Serve:
    """``with serve(**groups) as client``: the service on its own copy, ready (a champion loaded)."""

    @contextlib.contextmanager
    def serving(**groups: dict[str, Any]) -> Iterator[TestClient]:
        with TestClient(create_app(settings_copy(**groups))) as client:
            wait_ready(client)
            yield client

    return serving
