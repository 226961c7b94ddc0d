"""Benchmark: how live the live stack's forecasts are, and how fast the clock really runs, at set speeds.

Starts a local ``mlflow server`` (SQLite, local artifacts) and ``btcmlops feed``, ``trainer``, ``serve``
and ``client`` as processes on an SQLite price store, with the shipped candles through January 2024
and the clock holding for each contest. Once v1 serves, it lets ``--sim-hours`` hours of January run,
then reads the prediction log: hours without a forecast, the lag from each hour's close to its forecast
(sim hours, and real milliseconds), how many were live (made before their target hour closed), the
clock's real speed (sim hours per real second while forecasts were made) and v1's first forecast in sim
hours after the hold at the month's end. The clock is paced (it waits for each forecast); ``--free``
also runs each speed with a clock that does not wait, for comparison. The real speed is measured between
the contest holds (from v1's first forecast to the last hour asked), with the real milliseconds from one
hour's forecast to the next (median and 90th percentile: while the paced clock waits, the per-hour latency
of the chain feed write, service read, client ask).

``--before SRC`` runs every speed also with the code of another checkout's ``src`` (e.g. main's, in a
``git worktree``), alternating the two ``--rounds`` times, so both see the same machine load (the load
average is printed with each run).

    uv run python bench/live.py [--speeds 3 48] [--sim-hours 96] [--free] [--before ../main/src --rounds 2]
"""

from __future__ import annotations

import argparse
import itertools
import os
import secrets
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
from btcmlops.settings import EMBEDDED_DATA_FILE, StoreSettings
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


def _cpu_s(pid: int) -> float:
    """CPU seconds (user and system) the process ``pid`` has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


CHAIN = ("feed", "api", "client")
"""The processes every sim hour passes through, whose CPU per hour the bench prints."""


def run(
    speed: float, sim_hours: int, root: Path, *, paced: bool, src: Path | None = None
) -> dict[str, float]:
    """One stack at ``speed``; ``src``: run the processes on that checkout's code instead of this one."""
    home = Path(tempfile.mkdtemp(prefix=f"speed-{speed:g}-{'paced' if paced else 'free'}-", dir=root))
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
        "BTCMLOPS_FEED__NOTIFY_URL": f"http://127.0.0.1:{api_port}",  # older code: ignored
        "BTCMLOPS_SERVE__CONTROL_KEY": secrets.token_hex(16),
        "BTCMLOPS_STORE__SQLITE_WAL": "true",  # older code: ignored
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        **({"PYTHONPATH": str(src.resolve())} if src is not None else {}),
    }
    # the older code's store as it makes it (the write-ahead mode, once set, stays with the file)
    store = PriceStore(env["BTCMLOPS_STORE__URL"], StoreSettings(sqlite_wal=src is None))
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
        _wait(lambda: store.read_predictions(start=V1_FIRST_HOUR + timedelta(hours=1)), 600)
        cpu_before = {name: _cpu_s(processes[name].pid) for name in CHAIN}
        counted_from = len(store.read_predictions(limit=100_000))
        _wait(lambda: store.read_predictions(start=last + timedelta(hours=1)), 600)
        cpu = {name: _cpu_s(processes[name].pid) - cpu_before[name] for name in CHAIN}
        counted = len(store.read_predictions(limit=100_000)) - counted_from
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
    steps_ms = sorted(
        (later.served_at - earlier.served_at).total_seconds() * 1000
        for earlier, later in itertools.pairwise(ordered)
    )
    return {
        **{f"cpu_{name}_ms": cpu[name] * 1000 / max(counted, 1) for name in CHAIN},
        "step_median_ms": statistics.median(steps_ms),
        "step_p90_ms": steps_ms[int(len(steps_ms) * 0.9)],
        "real_speed": (newest.sim_made_at - first.sim_made_at) / timedelta(hours=1) / real_s,
        "takeover_h": (first.sim_made_at - (V1_FIRST_HOUR + timedelta(hours=1))) / timedelta(hours=1),
        "hours": len(expected),
        "missing": len(expected - hours),
        "live": sum(row.live for row in logged),
        "not_live": sum(not row.live for row in logged),
        "twice": len(logged) - len(hours),
        "lag_median_h": statistics.median(lags),
        "lag_max_h": max(lags),
        "lag_median_ms": statistics.median(lags) / speed * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--speeds", type=float, nargs="+", default=[3.0, 48.0])
    parser.add_argument("--sim-hours", type=int, default=96)
    parser.add_argument("--free", action="store_true", help="Also run each speed with an unpaced clock.")
    parser.add_argument("--before", type=Path, help="Another checkout's src, run alternately with this one.")
    parser.add_argument("--rounds", type=int, default=1, help="How many times each variant runs.")
    arguments = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-live-"))
    variants: list[tuple[str, Path | None]] = [("this", None)]
    if arguments.before is not None:
        variants.insert(0, ("before", arguments.before))
    header = (
        ("code", 6), ("clock", 6), ("speed", 6), ("real", 6), ("hours", 6), ("missing", 8), ("live", 6),
        ("not live", 8), ("twice", 5),
    )  # fmt: skip
    print(
        " ".join(f"{name:>{width}}" for name, width in header),
        f"{'lag median':>12} {'lag max':>9} {'median real':>12} {'v1 first':>9} {'ms/hour':>8} "
        f"{'p90':>6} {'load':>5}  CPU ms per hour: feed api client",
    )
    for _ in range(arguments.rounds):
        for speed in arguments.speeds:
            for paced in (True, False) if arguments.free else (True,):
                for name, src in variants:
                    _print(name, speed, paced, run(speed, arguments.sim_hours, root, paced=paced, src=src))


def _print(name: str, speed: float, paced: bool, result: dict[str, float]) -> None:
    print(
        f"{name:>6} {'paced' if paced else 'free':>6} {speed:>6g} {result['real_speed']:>6.1f} "
        f"{result['hours']:>6.0f} {result['missing']:>8.0f} {result['live']:>6.0f} "
        f"{result['not_live']:>8.0f} {result['twice']:>5.0f} "
        f"{result['lag_median_h']:>10.2f} h {result['lag_max_h']:>7.2f} h "
        f"{result['lag_median_ms']:>9.0f} ms {result['takeover_h']:>7.2f} h "
        f"{result['step_median_ms']:>8.1f} {result['step_p90_ms']:>6.1f} {os.getloadavg()[0]:>5.1f}  "
        + " ".join(f"{result[f'cpu_{name}_ms']:.1f}" for name in CHAIN),
        flush=True,
    )


if __name__ == "__main__":
    main()
