"""The `mlflow ui ...` command a replay prints works as printed, in a plain shell."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from btcmlops.replay import ReplayResult
from factories import ReplayOf
from services import free_port, stop_process_group, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory, replay_of: ReplayOf) -> ReplayResult:
    return replay_of(tmp_path_factory.mktemp("ui-command"), "2021-01-01", "2021-03-31 23:00")


def test_the_printed_mlflow_ui_command_serves_the_replays_registry(
    replay: ReplayResult, tmp_path: Path
) -> None:
    port = free_port()
    command = replay.ui_command.replace("--port 5000", f"--port {port}")
    assert command != replay.ui_command
    log = (tmp_path / "mlflow-ui.log").open("w")
    # No venv on PATH and no `uv run`: what a user pastes into a new terminal.
    process = subprocess.Popen(
        ["bash", "-c", f"exec env PATH=/usr/bin:/bin {command}"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=tmp_path,
    )
    try:
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            try:
                return httpx.get(f"{url}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(
            answers,
            timeout_s=120,
            what="mlflow ui",
            on_timeout=lambda: (tmp_path / "mlflow-ui.log").read_text(),
        )
        found = httpx.get(
            f"{url}/api/2.0/mlflow/registered-models/alias",
            params={"name": "btc-next-hour-close", "alias": "champion"},
            timeout=10,
        )
        assert found.status_code == 200, found.text
        assert found.json()["model_version"]["version"] == str(replay.summary["final_champion"])
    finally:
        stop_process_group(process, timeout_s=30)
        log.close()
