"""Benchmark: how live the live stack's forecasts are, at 3 and at 48 sim hours per second.

Starts a local ``mlflow server`` (SQLite, local artifacts) and ``btcmlops feed``, ``trainer``, ``serve``
and ``client`` as processes on an SQLite price store, with the shipped candles through January 2024
and the clock holding for each contest. Once v1 serves, it lets ``--sim-hours`` hours of January run,
then reads the prediction log: hours without a forecast, the lag from each hour's close to its forecast
(sim hours, and real milliseconds), how many were live (made before their target hour closed), the
clock's real speed (sim hours per real second while forecasts were made) and v1's first forecast in sim
hours after the hold at the month's end. The clock is paced (it waits for each forecast); ``--free``
also runs each speed with a clock that does not wait, for comparison.

    uv run python bench/live.py [--speeds 3 48] [--sim-hours 96] [--free]
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd

from btcmlops.clock import start_clock
from btcmlops.data import read_candle_file
from btcmlops.settings import EMBEDDED_DATA_FILE
from btcmlops.store import PriceStore

START = datetime(2023, 12, 31, tzinfo=UTC)
V1_FIRST_HOUR = datetime(2023, 12, 31, 23, tzinfo=UTC)


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(check: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"not ready after {timeout_s} s")


def run(speed: float, sim_hours: int, root: Path, *, paced: bool) -> dict[str, float]:
    home = root / f"speed-{speed:g}-{'paced' if paced else 'free'}"
    home.mkdir()
    candles = read_candle_file(EMBEDDED_DATA_FILE).candles
    data = home / "candles.csv"
    january = candles.loc[candles["open_time"] <= pd.Timestamp("2024-01-31 23:00", tz="UTC")].copy()
    january["open_time"] = january["open_time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    january.to_csv(data, index=False)
    mlflow_port, api_port = _port(), _port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BTCMLOPS_")},
        "BTCMLOPS_HOME": str(home),
        "BTCMLOPS_STORE__URL": f"sqlite:///{home / 'prices.db'}",
        "BTCMLOPS_MLFLOW__TRACKING_URI": f"http://127.0.0.1:{mlflow_port}",
        "BTCMLOPS_CLIENT__API_URL": f"http://127.0.0.1:{api_port}",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    store = PriceStore(env["BTCMLOPS_STORE__URL"])
    store.migrate()
    btcmlops = [sys.executable, "-m", "btcmlops"]
    commands = {
        "mlflow": [str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri",
                   f"sqlite:///{home / 'mlflow.db'}", "--artifacts-destination", str(home / "mlartifacts"),
                   "--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1"],
        "feed": [*btcmlops, "feed", "--data", str(data), "--no-start-clock"],
        "trainer": [*btcmlops, "trainer"],
        "api": [*btcmlops, "serve", "--port", str(api_port)],
        "client": [*btcmlops, "client"],
    }  # fmt: skip
    processes = {
        name: subprocess.Popen(
            command,
            env=env,
            stdout=(home / f"{name}.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for name, command in commands.items()
    }
    try:
        _wait(lambda: httpx.get(f"http://127.0.0.1:{api_port}/healthz").status_code == 200, 180)
        end_at = pd.Timestamp("2024-02-01", tz="UTC").to_pydatetime()
        store.write_clock(start_clock(START, speed, datetime.now(UTC), hold=True, end_at=end_at, paced=paced))
        last = V1_FIRST_HOUR + timedelta(hours=sim_hours)
        _wait(lambda: store.read_predictions(start=last + timedelta(hours=1)), 600)
        time.sleep(2)  # the log is written in the background
    finally:
        for process in processes.values():
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes.values():
            process.wait(timeout=30)
    logged = [row for row in store.read_predictions(limit=100_000) if row.timestamp <= last]
    store.dispose()
    hours = {row.timestamp for row in logged}
    expected = {V1_FIRST_HOUR + timedelta(hours=n) for n in range(sim_hours + 1)}
    lags = [(row.sim_made_at - row.timestamp) / timedelta(hours=1) - 1 for row in logged if row.sim_made_at]
    ordered = sorted(logged, key=lambda row: row.timestamp)
    first, newest = ordered[0], ordered[-1]
    assert first.sim_made_at is not None
    assert newest.sim_made_at is not None
    real_s = (newest.served_at - first.served_at).total_seconds()
    return {
        "real_speed": (newest.sim_made_at - first.sim_made_at) / timedelta(hours=1) / real_s,
        "takeover_h": (first.sim_made_at - (V1_FIRST_HOUR + timedelta(hours=1))) / timedelta(hours=1),
        "hours": len(expected),
        "missing": len(expected - hours),
        "live": sum(row.live for row in logged),
        "lag_median_h": statistics.median(lags),
        "lag_max_h": max(lags),
        "lag_median_ms": statistics.median(lags) / speed * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--speeds", type=float, nargs="+", default=[3.0, 48.0])
    parser.add_argument("--sim-hours", type=int, default=96)
    parser.add_argument("--free", action="store_true", help="Also run each speed with an unpaced clock.")
    arguments = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-live-"))
    header = (("clock", 6), ("speed", 6), ("real", 6), ("hours", 6), ("missing", 8), ("live", 6))
    print(
        " ".join(f"{name:>{width}}" for name, width in header),
        f"{'lag median':>12} {'lag max':>9} {'median real':>12} {'v1 first':>9}",
    )
    for speed in arguments.speeds:
        for paced in (True, False) if arguments.free else (True,):
            result = run(speed, arguments.sim_hours, root, paced=paced)
            print(
                f"{'paced' if paced else 'free':>6} {speed:>6g} {result['real_speed']:>6.1f} "
                f"{result['hours']:>6.0f} {result['missing']:>8.0f} {result['live']:>6.0f} "
                f"{result['lag_median_h']:>10.2f} h {result['lag_max_h']:>7.2f} h "
                f"{result['lag_median_ms']:>9.0f} ms {result['takeover_h']:>7.2f} h",
                flush=True,
            )


if __name__ == "__main__":
    main()
