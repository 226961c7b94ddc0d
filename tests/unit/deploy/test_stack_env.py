"""stack.env, loaded as `make stack` loads it (`uv run --env-file stack.env`): each port is set once and
every URL that names it follows, also when the shell moves it; supervisord.conf passes no port of its
own to the btcmlops programs, so their settings decide."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[3]
PRINT_SETTINGS = (
    "import json, os; from btcmlops.settings import Settings; s = Settings(); "
    "print(json.dumps({'mlflow_port': os.environ['MLFLOW_PORT'], 'serve': s.serve.port, "
    "'dashboard': s.dashboard.port, 'client_api': s.client.api_url, 'dashboard_api': s.dashboard.api_url, "
    "'tracking': s.mlflow.tracking_uri, 'mlflow_ui': s.dashboard.mlflow_ui_url}))"
)


def _stack_settings(**shell: str) -> dict[str, object]:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("BTCMLOPS_", "MLFLOW_"))}
    run = [uv, "run", "--frozen", "--no-sync", "--python", sys.executable, "--env-file", "stack.env"]
    done = subprocess.run(
        [*run, "python", "-c", PRINT_SETTINGS],
        env={**env, **shell},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    settings: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return settings


def _port(url: object) -> int | None:
    return urlsplit(str(url)).port


@pytest.mark.parametrize(
    "shell",
    [{}, {"MLFLOW_PORT": "5077", "BTCMLOPS_SERVE__PORT": "8077", "BTCMLOPS_DASHBOARD__PORT": "8577"}],
    ids=["as shipped", "ports moved in the shell"],
)
def test_every_url_follows_the_port_it_names(shell: dict[str, str]) -> None:
    settings = _stack_settings(**shell)
    mlflow_port = int(str(settings["mlflow_port"]))
    assert _port(settings["client_api"]) == settings["serve"]  # else the paced clock stalls
    assert _port(settings["dashboard_api"]) == settings["serve"]
    assert _port(settings["tracking"]) == mlflow_port
    assert _port(settings["mlflow_ui"]) == mlflow_port
    if shell:
        assert (settings["serve"], settings["dashboard"], mlflow_port) == (8077, 8577, 5077)


def test_supervisord_leaves_the_btcmlops_ports_to_the_settings() -> None:
    conf = (ROOT / "deploy" / "stack" / "supervisord.conf").read_text()
    commands = [line.split("=", 1)[1] for line in conf.splitlines() if line.startswith("command=")]
    ours = [command for command in commands if command.startswith("btcmlops")]
    assert {"btcmlops serve", "btcmlops dashboard", "btcmlops client"} <= set(ours)
    assert not any("--port" in command or "--host" in command for command in ours)
    [mlflow] = [command for command in commands if command.startswith("mlflow server")]
    assert "--port %(ENV_MLFLOW_PORT)s" in mlflow
