"""Benchmark: the trainer's fit time inside `make stack` against the same fit on a quiet machine.

In the live stack the trainer shares the cores with the mlflow server, the inference service, the
feed, the client and the dashboard, and a fit that waits for busy cores can take many times its quiet
time (issue 12: the target is within 2x). This runs the quiet replay first (``btcmlops simulate``,
nothing else running) and then `make stack` itself (supervisord, ``stack.env``, 48 sim h/s) in a
scratch directory until ``--contests`` contests are decided, and compares each training run's
``train_seconds`` by run name (same name: same training window, same data, same settings).
The compose run measures the same in containers (``tests/compose``, `make test-compose`).

    uv run python bench/stack_fit.py [--contests 3]

Needs the ports of ``stack.env`` free (mlflow 5000, api 8000, dashboard 8501).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from dotenv import dotenv_values

from btcmlops.registry import ModelRegistry
from btcmlops.settings import MlflowSettings

ROOT = Path(__file__).resolve().parents[1]
API = "http://127.0.0.1:8000"
PORTS = (5000, 8000, 8501)


def _fits(mlflow_db: Path) -> dict[str, float]:
    names = MlflowSettings()  # both runs use the default experiment and model names
    registry = ModelRegistry(f"sqlite:///{mlflow_db}", names.experiment, names.registered_model, create=False)
    return registry.fit_seconds()


def _quiet(root: Path) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BTCMLOPS_")}
    env["BTCMLOPS_HOME"] = str(root / "quiet-home")
    subprocess.run(
        [sys.executable, "-m", "btcmlops", "simulate", "--out", str(root / "quiet")],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    return _fits(root / "quiet" / "mlflow.db")


def _decided() -> int:
    try:
        return len(httpx.get(f"{API}/decisions", timeout=5).json())
    except (httpx.HTTPError, ValueError):
        return 0


def _stack(root: Path, contests: int, timeout_s: float) -> dict[str, float]:
    work = root / "stack"
    (work / ".btcmlops" / "stack").mkdir(parents=True)
    # As `make stack` runs it: stack.env's settings, the venv's commands on PATH, paths under PWD.
    venv_bin = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("BTCMLOPS_")}
    env.update({k: v for k, v in dotenv_values(ROOT / "stack.env").items() if v is not None})
    env.update(PWD=str(work), PATH=f"{venv_bin}{os.pathsep}{env.get('PATH', '')}")
    supervisord = subprocess.Popen(
        [str(venv_bin / "supervisord"), "-c", str(ROOT / "deploy" / "stack" / "supervisord.conf")],
        cwd=work,
        env=env,
        stdout=(work / "stack.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout_s
        while _decided() < contests:
            if time.monotonic() > deadline or supervisord.poll() is not None:
                log = work / "stack.log"
                raise TimeoutError(f"fewer than {contests} contests in {timeout_s} s: see {log}")
            time.sleep(2)
    finally:
        os.killpg(supervisord.pid, signal.SIGTERM)
        supervisord.wait(timeout=60)
    return _fits(work / ".btcmlops" / "stack" / "mlflow.db")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contests", type=int, default=3, help="stop the stack after this many contests")
    parser.add_argument("--timeout-s", type=float, default=900)
    args = parser.parse_args()
    for port in PORTS:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                sys.exit(f"port {port} is taken: stop the running stack first")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        quiet = _quiet(root)
        live = _stack(root, args.contests, args.timeout_s)
    ratios = {name: live[name] / quiet[name] for name in sorted(live) if name in quiet}
    print(f"{'training run':<40} {'quiet s':>8} {'stack s':>8} {'ratio':>6}")
    for name, ratio in ratios.items():
        print(f"{name:<40} {quiet[name]:>8.2f} {live[name]:>8.2f} {ratio:>6.2f}")
    print(f"median ratio {statistics.median(ratios.values()):.2f}, max {max(ratios.values()):.2f}")


if __name__ == "__main__":
    main()
