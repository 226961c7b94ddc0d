"""Benchmark: the challenger in shadow costs the hot path nothing and one model's memory.

One ``btcmlops serve`` on a copy of a replay's stores, with the ``challenger`` alias set (the replay's
last contest's challenger), started alternately with ``BTCMLOPS_SERVE__SHADOW_CHALLENGER=false`` (the
champion alone) and ``true`` (the challenger loaded, its shadow hours scored, the live contest judged).
wrk measures ``POST /predict`` at 8 connections in each run; reported per setting: the best req/s, p50,
p99, the service's RSS after the run (VmRSS) and its peak (VmHWM), and the ratio of throughputs
(target: shadow on within 10 % of the champion alone). Also timed: ``GET /contest/live?month=`` of the
replay's last decided month, a whole month judged again from the store (candles read, features built,
both sides forecast, both tests), the most one round of the live contest does. Needs wrk
(``apt-get install wrk``):

    uv run python bench/shadow.py [--replay out/replay] [--seconds 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from serve import _free_port, _server, _wrk, ensure_replay  # the same wrk driver as bench/serve.py

from btcmlops.registry import CHALLENGER, ModelRegistry
from btcmlops.settings import Settings
from btcmlops.store import PriceStore


def _rss_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _wait_for_shadow(url: str, challenger: int) -> None:
    """Until the challenger is loaded and its shadow hours scored (the live scores name it)."""
    deadline = time.monotonic() + 120
    label = f'model_version="{challenger}",role="challenger"'
    while time.monotonic() < deadline:
        if label in httpx.get(f"{url}/metrics", timeout=5).text:
            return
        time.sleep(0.2)
    raise RuntimeError("the challenger was never scored in shadow")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replay", type=Path, default=Path("out/replay"))
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    replay = ensure_replay(args.replay)
    scratch = Path(tempfile.mkdtemp(prefix="btcmlops-bench-shadow-"))
    results: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    judged_s: list[float] = []
    try:
        for name in ("prices.db", "mlflow.db"):
            shutil.copy(replay / name, scratch / name)
        settings = Settings()
        store = PriceStore(f"sqlite:///{scratch / 'prices.db'}")
        decision = store.list_decisions(settings.mlflow.registered_model)[-1]
        candles = store.read_candles()
        store.dispose()
        registry = ModelRegistry(
            f"sqlite:///{scratch / 'mlflow.db'}",
            settings.mlflow.experiment,
            settings.mlflow.registered_model,
            create=False,
        )
        registry.set_alias(CHALLENGER, decision.challenger_version)
        month = f"{decision.eval_start:%Y-%m}"
        hours = list(candles["open_time"].iloc[-4000:-1])
        stamps = [h.strftime("%Y-%m-%dT%H:%M:%SZ") for h in random.Random(1).sample(hours, 1000)]
        bodies = [json.dumps({"timestamp": stamp}) for stamp in stamps]
        for _ in range(args.rounds):
            for shadow in (False, True):
                port = _free_port()
                url = f"http://127.0.0.1:{port}"
                command = [
                    sys.executable,
                    "-m",
                    "btcmlops",
                    "serve",
                    "--replay",
                    str(scratch),
                    "--port",
                    str(port),
                ]
                env = {**os.environ, "BTCMLOPS_SERVE__SHADOW_CHALLENGER": str(shadow).lower()}
                with _server(command, url, "/readyz", env) as server:
                    if shadow:
                        _wait_for_shadow(url, decision.challenger_version)
                    _wrk(url, "/predict", bodies, 8, 2, scratch)  # warm up
                    run = _wrk(url, "/predict", bodies, 8, args.seconds, scratch)
                    run["rss_mb"] = _rss_mb(server.pid, "VmRSS")
                    run["peak_rss_mb"] = _rss_mb(server.pid, "VmHWM")
                    if shadow:
                        started = time.perf_counter()
                        answer = httpx.get(f"{url}/contest/live", params={"month": month}, timeout=120)
                        judged_s.append(time.perf_counter() - started)
                        assert answer.status_code == 200, answer.text
                    results[shadow].append(run)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print(
        f"| /predict, c=8, best of {args.rounds} | req/s | p50 ms | p99 ms | RSS MB | peak RSS MB | errors |"
    )
    print("|---|---|---|---|---|---|---|")
    best = {}
    for shadow, label in (
        (False, "champion alone (SHADOW_CHALLENGER=false)"),
        (True, "with the challenger in shadow"),
    ):
        run = best[shadow] = max(results[shadow], key=lambda r: r["rps"])
        errors = sum(r["errors"] for r in results[shadow])
        print(
            f"| {label} | {run['rps']:.0f} | {run['p50_ms']:.2f} | {run['p99_ms']:.2f} | "
            f"{run['rss_mb']:.0f} | {run['peak_rss_mb']:.0f} | {errors:.0f} |"
        )
    ratio = best[True]["rps"] / best[False]["rps"]
    medians = {shadow: statistics.median(r["rps"] for r in results[shadow]) for shadow in (False, True)}
    every = ", ".join(f"{r['rps']:.0f}" for shadow in (False, True) for r in results[shadow])
    print(
        f"\nthroughput with the shadow / alone: best {ratio:.3f}, median "
        f"{medians[True] / medians[False]:.3f} (target >= 0.90; every run, alone then shadow: {every}); "
        f"RSS +{best[True]['rss_mb'] - best[False]['rss_mb']:.0f} MB; "
        f"GET /contest/live?month={month} (a month judged again): "
        + ", ".join(f"{s:.2f} s" for s in judged_s)
    )


if __name__ == "__main__":
    main()
