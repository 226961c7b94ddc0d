"""`make stack`'s supervisor: every process started in order, and one killed with SIGKILL comes back
while the others keep running (honcho, before, stopped all of them)."""

from __future__ import annotations

import os
import shutil
import signal
import string
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services import free_port, stop_process_group, wait_until

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "deploy" / "stack" / "supervisord.conf"
PROGRAMS = ("mlflow", "api", "trainer", "feed", "client", "dashboard")


def _stack_env(tmp_path: Path) -> dict[str, str]:
    """stack.env as `make stack` loads it, on free ports, in ``tmp_path``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BTCMLOPS_")}
    mlflow, api, dashboard = free_port(), free_port(), free_port()
    ports = {"MLFLOW_PORT": str(mlflow), "BTCMLOPS_SERVE__PORT": str(api)}
    for line in (REPO / "stack.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            # ${VAR} as uv's --env-file expands it (the URLs built on the ports), on this test's ports
            env[key] = string.Template(value).safe_substitute({**env, **ports})
    env |= {
        "PWD": str(tmp_path),
        "PATH": f"{Path(sys.executable).parent}:{env['PATH']}",
        "MLFLOW_PORT": str(mlflow),
        "BTCMLOPS_MLFLOW__TRACKING_URI": f"http://127.0.0.1:{mlflow}",
        "BTCMLOPS_SERVE__PORT": str(api),
        "BTCMLOPS_CLIENT__API_URL": f"http://127.0.0.1:{api}",
        "BTCMLOPS_DASHBOARD__API_URL": f"http://127.0.0.1:{api}",
        "BTCMLOPS_DASHBOARD__MLFLOW_UI_URL": f"http://127.0.0.1:{mlflow}",
        "BTCMLOPS_DASHBOARD__PORT": str(dashboard),
        "BTCMLOPS_CLOCK__SPEED": "1",
    }
    return env


def _pids(env: dict[str, str]) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(CONF), "status"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    pids = {}
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[1] == "RUNNING":
            pids[parts[0]] = int(parts[3].rstrip(","))
    return pids


@pytest.fixture
def home() -> Iterator[Path]:
    """The stack's working directory, short: supervisord's socket is in it, and a Unix socket's path
    has at most 107 bytes (pytest's ``tmp_path`` under an xdist worker comes close or passes it)."""
    directory = Path(tempfile.mkdtemp(prefix="stack-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_the_native_stack_restarts_a_killed_process_and_keeps_the_others(home: Path) -> None:
    env = _stack_env(home)
    (home / ".btcmlops" / "stack").mkdir(parents=True)
    log = (home / "stack.log").open("w")
    stack = subprocess.Popen(
        [sys.executable, "-m", "supervisor.supervisord", "-c", str(CONF)],
        env=env,
        cwd=home,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    api = f"http://127.0.0.1:{env['BTCMLOPS_SERVE__PORT']}"

    def tail() -> str:
        return (home / "stack.log").read_text()[-4000:]

    def healthy() -> bool:
        try:
            return httpx.get(f"{api}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def all_running() -> bool:
        if stack.poll() is not None:  # supervisord itself failed to start: say so now, not in 120 s
            pytest.fail(f"supervisord exited with {stack.returncode}:\n{tail()}")
        return set(_pids(env)) == set(PROGRAMS)

    try:
        wait_until(all_running, timeout_s=120, what="every program", on_timeout=tail)
        wait_until(healthy, timeout_s=120, what="the api", on_timeout=tail)
        before = _pids(env)
        os.kill(before["api"], signal.SIGKILL)
        wait_until(
            lambda: _pids(env).get("api", before["api"]) != before["api"] and healthy(),
            timeout_s=120,
            what="the api restarted",
            on_timeout=tail,
        )
        after = _pids(env)
        assert {name: pid for name, pid in after.items() if name != "api"} == {
            name: pid for name, pid in before.items() if name != "api"
        }  # nobody else was stopped
        assert stack.poll() is None
    finally:
        stop_process_group(stack, timeout_s=60)
        log.close()
