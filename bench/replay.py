"""Benchmark: the full two-year replay on embedded defaults, MLflow included.

Runs ``btcmlops simulate`` as a user would (a fresh process each time) and reports the process's wall
time, the replay's own accounting (training, MLflow, data, report) and the forecast quality. The
first run uses an empty cache (MLflow builds its SQLite schema by migration); later runs copy the
cached empty schema. Target: wall < 30 s with MLflow under a quarter of it on a 2-core machine.

    uv run python bench/replay.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _replay(home: Path, out: Path) -> tuple[float, dict]:  # type: ignore[type-arg]
    env = {**os.environ, "BTCMLOPS_HOME": str(home)}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "btcmlops", "simulate", "--out", str(out)],
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
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
