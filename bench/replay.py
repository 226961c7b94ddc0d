"""Benchmark: the full two-year replay on embedded defaults, MLflow included.

Runs ``btcmlops simulate`` as a user would (a fresh process each time) and reports the process's wall
time, the replay's own accounting (training, MLflow, data, report) and the forecast quality. The
first run uses an empty cache (MLflow builds its SQLite schema by migration); later runs copy the
cached empty schema. Target: wall < 30 s with MLflow under a quarter of it on a 2-core machine.

    uv run python bench/replay.py [--runs 3]
    uv run python bench/replay.py --against e2f28d8 [--runs 3]
    uv run python bench/replay.py --executors serial,processes,dask [--runs 3]

``--executors`` times the same replay on each executor (``btcmlops simulate --executor``; an entry
``processes:1`` sets ``--workers 1``), runs alternating, and checks that every run wrote the same
``predictions.csv`` as the first. Target: under 8 s process wall with the best executor on 2 cores,
Dask within 20 % of ``processes``.

``--against REV`` compares this checkout with the code of a git revision (checked out into a scratch
worktree and run with this environment): the runs alternate, so both see the same noise of a shared
machine, and the ratio of the medians says what the change cost.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _replay(
    home: Path, out: Path, source: Path | None = None, options: tuple[str, ...] = ()
) -> tuple[float, dict]:  # type: ignore[type-arg]
    env = {**os.environ, "BTCMLOPS_HOME": str(home)}
    if source is not None:  # the other revision's package first on the path
        env["PYTHONPATH"] = str(source / "src")
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "btcmlops", "simulate", "--out", str(out), *options],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - started
    return wall, json.loads((out / "summary.json").read_text())


def _import_seconds(statement: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], check=True)
    return time.perf_counter() - started


def _against(revision: str, runs: int) -> None:
    """Alternate replays of ``revision`` and of this checkout; print both and the ratio of medians."""
    scratch = Path(tempfile.mkdtemp(prefix="btcmlops-bench-"))
    other = scratch / "other"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(other), revision], check=True, capture_output=True
    )
    walls: dict[str, list[float]] = {revision: [], "this checkout": []}
    try:
        _replay(scratch / "home", scratch / "warm")  # the MLflow schema cache, for both
        for run in range(runs):
            for name, source in ((revision, other), ("this checkout", None)):
                wall, summary = _replay(
                    scratch / "home", scratch / f"{run}-{len(walls[name])}-{id(source)}", source
                )
                walls[name].append(wall)
                training = summary["timings"].get("training_s", 0.0)
                print(f"run {run + 1} {name}: {wall:.1f} s, training {training:.1f} s")
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(other)], check=False)
        shutil.rmtree(scratch, ignore_errors=True)
    before, after = statistics.median(walls[revision]), statistics.median(walls["this checkout"])
    print(f"median wall: {revision} {before:.1f} s, this checkout {after:.1f} s: {after / before - 1:+.1%}")


def _executor_options(entry: str) -> tuple[str, ...]:
    """``processes:1`` -> ``--executor processes --workers 1``."""
    name, _, workers = entry.partition(":")
    return ("--executor", name, *(("--workers", workers) if workers else ()))


def _executors(entries: list[str], runs: int) -> None:
    """Alternate replays on each executor; print each run and the median wall per executor."""
    scratch = Path(tempfile.mkdtemp(prefix="btcmlops-bench-"))
    walls: dict[str, list[float]] = {entry: [] for entry in entries}
    first: bytes | None = None
    try:
        _replay(scratch / "home", scratch / "warm")  # the MLflow schema cache, for all
        for run in range(runs):
            for entry in entries:
                out = scratch / f"{run}-{entry.replace(':', '-')}"
                wall, summary = _replay(scratch / "home", out, options=_executor_options(entry))
                predictions = (out / "predictions.csv").read_bytes()
                first = first or predictions
                walls[entry].append(wall)
                timings = summary["timings"]
                print(
                    f"run {run + 1} {entry}: process wall {wall:.1f} s, replay {timings['total_s']:.1f} s, "
                    f"training (waited) {timings.get('training_s', 0):.1f} s, MLflow "
                    f"{timings.get('mlflow_s', 0):.1f} s, predictions.csv "
                    f"{'identical' if predictions == first else 'DIFFERENT'}"
                )
                shutil.rmtree(out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    medians = {entry: statistics.median(values) for entry, values in walls.items()}
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end")
    for entry, median in medians.items():
        print(
            f"median process wall {entry}: {median:.1f} s ({median / medians[entries[0]]:.2f}x {entries[0]})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--against", metavar="REV", help="a git revision to compare with, runs alternating")
    parser.add_argument(
        "--executors", metavar="LIST", help="comma-separated executors to compare, e.g. serial,processes,dask"
    )
    args = parser.parse_args()
    if args.executors:
        _executors(args.executors.split(","), args.runs)
        return
    if args.against:
        _against(args.against, args.runs)
        return
    scratch = Path(tempfile.mkdtemp(prefix="btcmlops-bench-"))
    try:
        rows = []
        for run in range(args.runs):
            wall, summary = _replay(scratch / "home", scratch / f"out{run}")
            timings = summary["timings"]
            rows.append((run, wall, timings, summary))
        python_only = _import_seconds("pass")
        with_pandas = _import_seconds("import pandas, lightgbm")
        with_mlflow = _import_seconds("import pandas, lightgbm, mlflow.lightgbm, mlflow.pyfunc")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print("| run | cache | process wall s | replay s | training s | MLflow s | MLflow share | report s |")
    print("|---|---|---|---|---|---|---|---|")
    for run, wall, timings, _ in rows:
        mlflow_s = timings.get("mlflow_s", 0.0)
        print(
            f"| {run + 1} | {'cold' if run == 0 else 'warm'} | {wall:.1f} | {timings['total_s']:.1f} | "
            f"{timings.get('training_s', 0):.1f} | {mlflow_s:.1f} | {mlflow_s / wall:.0%} | "
            f"{timings.get('report_s', 0):.1f} |"
        )
    summary = rows[-1][3]
    overall = summary["overall"]
    print()
    print(
        f"imports: python {python_only:.1f} s, +pandas+lightgbm {with_pandas:.1f} s, "
        f"+mlflow {with_mlflow:.1f} s (importing mlflow adds {with_mlflow - with_pandas:.1f} s)"
    )
    print(
        f"served MAE {overall['served']['mae']:.2f} USDT, naive MAE {overall['naive']['mae']:.2f} USDT, "
        f"skill {overall['skill']:+.3%}, promotions {summary['promotions']}, "
        f"final champion v{summary['final_champion']}"
    )


if __name__ == "__main__":
    main()
