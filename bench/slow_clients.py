"""Benchmark: slow and idle clients against ``btcmlops serve`` at its shipped settings (issue 21).

One ``btcmlops serve`` on a copy of a replay's stores, with the default header, body and keep-alive
timeouts and connection cap. A normal client asks ``GET /healthz`` and ``POST /predict`` back to back
alone, then beside ``--idle`` idle connections and ``--slow`` connections that send a request a byte a
second (half of them the headers, half the body of a ``POST /predict``). Reported: the normal client's
p50 and p95 in both runs and its failures, how many connections the service held (its open
descriptors), and how long until the server closed each kind of held connection, and with what.

    uv run python bench/slow_clients.py [--replay out/replay] [--idle 2000] [--slow 200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import httpx
from serve import _free_port, _server, ensure_replay  # as bench/serve.py makes and finds the replay

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from btcmlops.settings import ServeSettings
from held_connections import HeldConnections, ask_beside

HOURS = [
    f"2024-{month:02d}-{day:02d}T{hour:02d}:00:00Z"
    for month in (3, 6, 9)
    for day in range(1, 28)
    for hour in (0, 7, 13)
]
"""Hours of the shipped candles: their forecasts come from memory."""


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replay", type=Path, default=Path("out/replay"))
    parser.add_argument("--idle", type=int, default=2000)
    parser.add_argument("--slow", type=int, default=200)
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="the normal client's run, alone and beside"
    )
    args = parser.parse_args()
    replay = ensure_replay(args.replay)
    settings = ServeSettings()
    scratch = Path(tempfile.mkdtemp(prefix="btcmlops-bench-slow-"))
    for database in ("prices.db", "mlflow.db"):
        shutil.copy(replay / database, scratch / database)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "BTCMLOPS_HOME": str(scratch / "home")}
    command = [sys.executable, "-m", "btcmlops", "serve", "--replay", str(scratch), "--port", str(port)]
    try:
        with _server(command, url, "/readyz", env, scratch / "serve.log") as process:
            for hour in HOURS[:20]:
                httpx.post(f"{url}/predict", json={"timestamp": hour}, timeout=10)
            fds_before = _open_fds(process.pid)
            alone = ask_beside(url, args.seconds, HOURS)
            slow_headers = args.slow // 2
            with HeldConnections(
                "127.0.0.1",
                port,
                idle=args.idle,
                slow_headers=slow_headers,
                slow_bodies=args.slow - slow_headers,
            ) as held:
                beside = ask_beside(url, args.seconds, HOURS)
                held_by_service = _open_fds(process.pid) - fds_before
                still_open = held.open_count()
                closed = held.wait_closed(settings.body_timeout_s + 10)
                print(
                    f"settings: header timeout {settings.header_timeout_s:g} s, body timeout "
                    f"{settings.body_timeout_s:g} s, keep-alive {settings.keep_alive_timeout_s} s, "
                    f"cap {settings.max_connections}"
                    f"\nheld: {len(held.held)} connections opened in {held.opened_in_s:.2f} s; "
                    "the service held "
                    f"{held_by_service} more descriptors while the normal client asked; {still_open} still "
                    f"open when it stopped"
                    f"\nalone:  {alone.figures('/healthz')}; {alone.figures('/predict')}; "
                    f"failed {len(alone.failed())}"
                    f"\nbeside: {beside.figures('/healthz')}; {beside.figures('/predict')}; "
                    f"failed {len(beside.failed())}"
                    f"\n{held.closing_summary()}"
                    f"\nall closed by the server: {closed}; service descriptors {fds_before} before, "
                    f"{_open_fds(process.pid)} after"
                )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
