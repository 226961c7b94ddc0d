"""Benchmark: long reads never starve forecasts (issue 11's bounded reads).

One ``btcmlops serve`` on a copy of a replay's stores, its prediction log seeded with 50,000 rows.
wrk measures ``POST /predict`` at 64 connections alone, then again while 64 more connections read
``GET /predictions?limit=10000`` (the largest page) as fast as they can. Reported: /predict's p50 and
p99 in both runs (and their ratio), its errors, the reads answered (200) and turned away (503, the read
gate), and the service's peak RSS (VmHWM). Needs wrk (``apt-get install wrk``):

    uv run python bench/reads.py [--replay out/replay] [--seconds 15]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
from serve import _free_port, _server, _wrk, ensure_replay  # the same wrk driver as bench/serve.py

from btcmlops.store import LoggedPrediction, PriceStore

LOG_ROWS = 50_000


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reads(url: str, connections: int, seconds: int, out: dict[str, str]) -> None:
    done = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s",
         f"{url}/predictions?limit=10000"],
        capture_output=True, text=True,
    )  # fmt: skip
    out["stdout"] = done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replay", type=Path, default=Path("out/replay"))
    parser.add_argument("--seconds", type=int, default=15)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    replay = ensure_replay(args.replay)
    scratch = Path(tempfile.mkdtemp(prefix="btcmlops-bench-reads-"))
    try:
        for name in ("prices.db", "mlflow.db"):
            shutil.copy(replay / name, scratch / name)
        store = PriceStore(f"sqlite:///{scratch / 'prices.db'}")
        candles = store.read_candles()
        hours = list(candles["open_time"].iloc[-LOG_ROWS // 4 :])
        rows = [
            LoggedPrediction(hour, hour + timedelta(hours=1), 100.0 + n, 100.0, 1, hour, hour)
            for n in range(4)
            for hour in (h.to_pydatetime() for h in hours)
        ]
        store.log_predictions(rows)
        store.dispose()
        stamps = [h.strftime("%Y-%m-%dT%H:%M:%SZ") for h in random.Random(1).sample(hours[100:], 1000)]
        bodies = [json.dumps({"timestamp": stamp}) for stamp in stamps]
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        service = [sys.executable, "-m", "btcmlops", "serve", "--replay", str(scratch), "--port", str(port)]
        env = {**os.environ, "BTCMLOPS_SERVE__LOG_FLUSH_INTERVAL_S": "1"}
        with _server(service, url, "/readyz", env) as server:
            _wrk(url, "/predict", bodies, 8, 2, scratch)  # warm up
            alone = _wrk(url, "/predict", bodies, 64, args.seconds, scratch)
            reads: dict[str, str] = {}
            reader = threading.Thread(target=_reads, args=(url, 64, args.seconds + 4, reads))
            reader.start()
            time.sleep(2)
            loaded = _wrk(url, "/predict", bodies, 64, args.seconds, scratch)
            reader.join()
            ready = httpx.get(f"{url}/readyz", timeout=5).status_code
            peak = _peak_rss_mb(server.pid)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    out = reads["stdout"]
    total = int(out.split(" requests in ")[0].split()[-1])
    refused = int(out.split("Non-2xx or 3xx responses: ")[1].split()[0]) if "Non-2xx" in out else 0
    print("| /predict at 64 connections | req/s | p50 ms | p99 ms | errors |")
    print("|---|---|---|---|---|")
    for label, run in (("alone", alone), ("with 64 readers of /predictions?limit=10000", loaded)):
        print(
            f"| {label} | {run['rps']:.0f} | {run['p50_ms']:.1f} | {run['p99_ms']:.1f} "
            f"| {run['errors']:.0f} |"
        )
    print(
        f"\np99 ratio loaded/alone: {loaded['p99_ms'] / alone['p99_ms']:.2f}; reads: {total - refused} "
        f"pages of 10,000 rows answered, {refused} turned away (503); /readyz after: {ready}; "
        f"peak RSS {peak:.0f} MB"
    )


if __name__ == "__main__":
    main()
