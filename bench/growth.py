"""Benchmark: how the replay's time and memory grow with the history's length.

Generates 2, 4, 6, 8 and 10 years of hourly candles (``bench/generate_candles.py``, seeded) and
replays each with ``btcmlops simulate`` as a user would (a fresh process each), on each executor
named, the executors alternating within a length so that all see the same noise of a shared machine.
For each run it reports the process wall, the replay's own accounting (training the replaying process
waited for, MLflow, report) and the peak memory of the process tree. Target: ten years under 60 s of
process wall with ``processes``; Dask within 20 % of it.

Peak memory: every 0.1 s the resident set sizes (RSS) of the replaying process and of all its
descendants (the pool's or the Dask cluster's workers, their resource trackers) are read with psutil
and summed; the largest sum is the tree's peak. Pages shared between processes (the Python binary,
shared libraries) are counted once per process, so the figure is an upper bound of what the tree
needs; a peak shorter than 0.1 s can be missed. The largest single process's sampled peak is
reported beside it.

The fits' own seconds (the ``train_seconds`` metric of every training run, summed from the replay's
MLflow store) are reported beside the wall: divided by the cores, they are the least process wall any
executor can reach on this machine with these model settings, whatever the rest of the replay costs.
``--window N`` replays with a rolling training window of N months (``BTCMLOPS_MODEL__TRAIN_WINDOW_MONTHS``;
the default is the expanding window, every hour since the first candle).

    uv run python bench/growth.py [--years 2,4,6,8,10] [--executors processes:1,processes,dask] [--window N]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from generate_candles import generate_candles, write_candles

from btcmlops.registry import ModelRegistry
from btcmlops.settings import Settings

SAMPLE_S = 0.1


def _tree_rss(process: psutil.Process) -> list[int]:
    """The RSS of ``process`` and of each of its descendants now, in bytes (gone processes left out)."""
    sizes = []
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # it exited between the listing and the reading
            sizes.append(member.memory_info().rss)
    return sizes


def _options(entry: str) -> list[str]:
    """``processes:1`` -> ``--executor processes --workers 1``."""
    name, _, workers = entry.partition(":")
    return ["--executor", name, *(["--workers", workers] if workers else [])]


def fits_seconds(out: Path) -> float:
    """The summed ``train_seconds`` of the replay's training runs (its embedded MLflow store in ``out``),
    read as bench/stack_fit.py reads them (``ModelRegistry.fit_seconds``)."""
    names = Settings().mlflow  # the names the replay read from this environment
    registry = ModelRegistry(
        f"sqlite:///{out / 'mlflow.db'}", names.experiment, names.registered_model, create=False
    )
    return sum(registry.fit_seconds().values())


def replay(data: Path, out: Path, entry: str, window: int = 0) -> dict[str, float]:
    """Replay ``data`` on the executor ``entry``; return its wall, peaks and the replay's own timings.

    The home (``BTCMLOPS_HOME``, where the empty MLflow schema is cached) is the user's, as for
    ``btcmlops simulate``: after the first replay on this machine no run pays for building it.
    """
    command = [sys.executable, "-m", "btcmlops", "simulate", "--data", str(data), "--out", str(out)]
    started = time.perf_counter()
    env = {**os.environ, "BTCMLOPS_MODEL__TRAIN_WINDOW_MONTHS": str(window)}
    child = subprocess.Popen([*command, *_options(entry)], stdout=subprocess.DEVNULL, env=env)
    watched = psutil.Process(child.pid)
    tree_peak = largest = 0
    while child.poll() is None:
        try:
            sizes = _tree_rss(watched)
        except psutil.Error:  # the replaying process itself has just exited
            break
        tree_peak, largest = max(tree_peak, sum(sizes)), max(largest, *sizes, 0)
        time.sleep(SAMPLE_S)
    if child.wait() != 0:
        raise RuntimeError(f"{entry} on {data.name} failed with exit status {child.returncode}")
    wall = time.perf_counter() - started
    timings = json.loads((out / "summary.json").read_text())["timings"]
    return {
        "wall_s": wall,
        "tree_peak_mb": tree_peak / 2**20,
        "largest_process_mb": largest / 2**20,
        "training_s": timings.get("training_s", 0.0),
        "mlflow_s": timings.get("mlflow_s", 0.0),
        "report_s": timings.get("report_s", 0.0),
        "features_s": timings.get("features_s", 0.0),
        "fits_s": fits_seconds(out),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", default="2,4,6,8,10", help="comma-separated history lengths")
    parser.add_argument("--executors", default="processes:1,processes,dask", metavar="LIST")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--window", type=int, default=0, help="rolling window, months (0: expanding)")
    parser.add_argument("--keep", type=Path, help="keep the generated files and replays in this folder")
    args = parser.parse_args()
    scratch = args.keep or Path(tempfile.mkdtemp(prefix="btcmlops-growth-"))
    entries = args.executors.split(",")
    rows = []
    try:
        for years in (int(value) for value in args.years.split(",")):
            data = write_candles(generate_candles(years, args.seed), scratch / f"candles-{years}y.csv.gz")
            for entry in entries:
                out = scratch / f"replay-{years}y-{entry.replace(':', '-')}"
                result = replay(data, out, entry, args.window)
                rows.append((years, entry, result))
                print(
                    f"{years} years, {entry}: process wall {result['wall_s']:.1f} s, tree peak "
                    f"{result['tree_peak_mb']:.0f} MiB (largest process {result['largest_process_mb']:.0f}), "
                    f"training waited {result['training_s']:.1f} s, "
                    f"MLflow {result['mlflow_s']:.1f} s, report {result['report_s']:.1f} s, "
                    f"the fits' own {result['fits_s']:.1f} s",
                    flush=True,
                )
                if args.keep is None:
                    shutil.rmtree(out)
    finally:
        if args.keep is None:
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"\n{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end\n")
    print(
        "| years | executor | process wall s | tree peak RSS MiB | largest process MiB | "
        "training waited s | MLflow s | report s | the fits' own s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for years, entry, result in rows:
        print(
            f"| {years} | {entry} | {result['wall_s']:.1f} | {result['tree_peak_mb']:.0f} | "
            f"{result['largest_process_mb']:.0f} | "
            f"{result['training_s']:.1f} | {result['mlflow_s']:.1f} | {result['report_s']:.1f} | "
            f"{result['fits_s']:.1f} |"
        )


if __name__ == "__main__":
    main()
