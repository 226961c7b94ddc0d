"""Benchmark: what the prediction log's write-ahead file costs a request, and how fast a batch drains.

``PredictionLogWriter.append`` is on the request path: each forecast is encoded (one JSON line) and
written to the write-ahead file with one ``os.write`` before the answer goes out. This times
``append`` one call at a time, in memory only (no file, as before) and with the file, then the
flush of the whole backlog into an SQLite store (insert-or-ignore on ``entry_id``) and a replay of the
same rows by a second writer (all no-ops in the store).

    uv run python bench/prediction_log.py [--rows 20000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from btcmlops.serving.prediction_log import PredictionLogWriter
from btcmlops.store import LoggedPrediction, PriceStore

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _forecasts(rows: int) -> list[LoggedPrediction]:
    now = datetime.now(UTC)
    return [
        LoggedPrediction(
            T0 + timedelta(hours=n), T0 + timedelta(hours=n + 1), 60_123.456 + n, 60_000.5, 7, now, now
        )
        for n in range(rows)
    ]


def _append_times(writer: PredictionLogWriter, forecasts: list[LoggedPrediction]) -> list[float]:
    """Microseconds per append, one call at a time."""
    times = []
    for forecast in forecasts:
        started = time.perf_counter_ns()
        writer.append(forecast)
        times.append((time.perf_counter_ns() - started) / 1000)
    return times


def _line(label: str, times: list[float]) -> str:
    ordered = sorted(times)
    p99 = ordered[int(len(ordered) * 0.99)]
    return (
        f"{label:<34} mean {statistics.fmean(times):6.2f} us  p50 {statistics.median(times):6.2f} us  "
        f"p99 {p99:6.2f} us  max {ordered[-1]:8.1f} us"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()
    forecasts = _forecasts(args.rows)
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        store = PriceStore(f"sqlite:///{root / 'prices.db'}")
        store.migrate()
        print(f"{args.rows} appends per run, one at a time (flush thread idle), {os.cpu_count()} CPUs")

        other = PriceStore(f"sqlite:///{root / 'other.db'}")
        other.migrate()
        memory = PredictionLogWriter(other, 3600, max_backlog=10 * args.rows)
        memory.start()
        print(_line("in memory only (before)", _append_times(memory, forecasts)))
        memory.stop()
        other.dispose()

        wal = root / "wal"
        writer = PredictionLogWriter(store, 3600, wal_dir=wal, max_backlog=10 * args.rows)
        writer.start()
        print(_line("write-ahead file (os.write each)", _append_times(writer, forecasts)))
        print(f"write-ahead bytes per forecast: {writer.wal_bytes / args.rows:.0f}")

        kept = {path.name: path.read_bytes() for path in wal.glob("*.wal")}
        started = time.perf_counter()
        assert writer.flush()
        flushed = time.perf_counter() - started
        print(f"flush of {args.rows} rows to SQLite: {flushed:.2f} s ({args.rows / flushed:,.0f} rows/s)")

        abandoned = PredictionLogWriter(store, 3600, wal_dir=root / "wal2")
        abandoned.start()
        abandoned.stop()
        for name, data in kept.items():  # as if the process had died before deleting its file
            (wal.parent / "wal2" / name).write_bytes(data)
        started = time.perf_counter()
        replayer = PredictionLogWriter(store, 3600, wal_dir=root / "wal2")
        replayer.start()
        replayer.stop()
        replayed = time.perf_counter() - started
        print(
            f"replay of {replayer.replayed} rows already in the store (read, insert-or-ignore, delete): "
            f"{replayed:.2f} s; rows in the log: {len(store.read_predictions(limit=10 * args.rows))}"
        )
        writer.stop()
        store.dispose()


if __name__ == "__main__":
    main()
