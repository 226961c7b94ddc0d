"""Benchmark: what sharing the fits between a sweep's combinations saves.

Runs ``btcmlops sweep`` on the shipped two years as a user would (a fresh process each time) with the
models shared between combinations that differ only in contest settings (the default) and with
``--no-share-fits`` (each replay fits its own), the two alternating so that both see the same noise of
a shared machine. Prints each run's process wall, the replays' summed training time and the fits made,
and checks that both wrote the same ``summary.csv`` scores (sharing must change nothing but the time).

    uv run python bench/sweep.py [--runs 2] [-- --rule margin --rule significance]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

SCORES = ["name", "served_mae", "skill", "interval_score", "promotions", "significant_promotions"]


def _sweep(home: Path, out: Path, grid: list[str], share: bool) -> tuple[float, float, pd.DataFrame, str]:
    env = {**os.environ, "BTCMLOPS_HOME": str(home), "COLUMNS": "200"}
    options = [] if share else ["--no-share-fits"]
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "btcmlops", "sweep", "--out", str(out), *grid, *options],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    table = pd.read_csv(out / "summary.csv")
    training = sum(
        json.loads((Path(folder) / "summary.json").read_text())["timings"].get("training_s", 0.0)
        for folder in table["out_dir"]
    )
    fits = next(line for line in done.stdout.splitlines() if "fits made" in line)
    return wall, training, table, fits.strip()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=2, help="rounds of (not shared, shared)")
    parser.add_argument("grid", nargs="*", default=["--rule", "margin", "--rule", "significance"])
    arguments = parser.parse_args()
    walls: dict[bool, list[float]] = {False: [], True: []}
    tables: list[pd.DataFrame] = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        for run in range(arguments.runs):
            for share in (False, True):
                wall, training, table, fits = _sweep(root / "home", root / "out", arguments.grid, share)
                walls[share].append(wall)
                tables.append(table[SCORES])
                print(
                    f"run {run + 1} {'shared' if share else 'not shared'}: process wall {wall:.1f} s, "
                    f"training {training:.1f} s; {fits}",
                    flush=True,
                )
    for table in tables[1:]:
        pd.testing.assert_frame_equal(table, tables[0])
    unshared, shared = statistics.median(walls[False]), statistics.median(walls[True])
    print(
        f"median wall: not shared {unshared:.1f} s, shared {shared:.1f} s ({shared / unshared:.2f}x); "
        "every run's scores identical"
    )


if __name__ == "__main__":
    main()
