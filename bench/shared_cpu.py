"""Benchmark: the replay's training time on a shared CPU, by LightGBM thread setting.

The trainer never has the machine to itself: in compose or ``make stack`` the feed, the service, the
client, MLflow and the database share its cores. This runs ``btcmlops simulate`` quietly and with three
busy processes beside it (each a Python loop burning one core), for each ``BTCMLOPS_MODEL__NUM_THREADS``
given, with OpenMP's waiting as shipped, and reports the replay's own training time and the ratio
loaded/quiet. Spinning OpenMP workers on a busy machine wait for cores the others hold: the slowdown
grows far past the fair share.

    uv run python bench/shared_cpu.py [--threads 2 1] [--busy 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

BURN = "while True: pass"


def _training_s(threads: int, busy: int, root: Path, *, passive: bool) -> float:
    home = Path(tempfile.mkdtemp(dir=root))
    env = {**os.environ, "BTCMLOPS_HOME": str(home), "BTCMLOPS_MODEL__NUM_THREADS": str(threads)}
    if passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    else:
        env.pop("OMP_WAIT_POLICY", None)
    burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(busy)]
    try:
        subprocess.run(
            [sys.executable, "-m", "btcmlops", "simulate", "--out", str(home / "out")],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    summary = json.loads((home / "out" / "summary.json").read_text())
    return float(summary["timings"]["training_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    parser.add_argument("--busy", type=int, default=3)
    arguments = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-shared-cpu-"))
    print(
        f"| num_threads | OpenMP wait | quiet training s | with {arguments.busy} busy processes s | ratio |"
    )
    print("|---|---|---|---|---|")
    for threads in arguments.threads:
        for passive in (False, True) if threads > 1 else (False,):
            quiet = _training_s(threads, 0, root, passive=passive)
            loaded = _training_s(threads, arguments.busy, root, passive=passive)
            policy = "passive" if passive else "default"
            print(
                f"| {threads} | {policy} | {quiet:.1f} | {loaded:.1f} | {loaded / quiet:.1f}x |", flush=True
            )


if __name__ == "__main__":
    main()
