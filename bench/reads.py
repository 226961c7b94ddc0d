"""Benchmark: long reads never slow forecasts, and a look back is answered from memory (issue 20).

One ``btcmlops serve`` on a copy of a replay's stores, its prediction log seeded with 50,000 rows (four
live forecasts by v1 for each of the last 12,500 hours). wrk measures ``POST /predict`` at 64
connections alone, then again while 64 more connections read ``GET /predictions?limit=10000`` (the
largest page) as fast as they can; a client polls ``/readyz`` every 50 ms, first beside the readers
alone (8 s), then beside the readers and the forecasts' load. Then, at 8 connections,
forecasts of hours the champion was trained on (a look back: the answer names the version that served
the hour live, ``served_live_by``) against forecasts of hours after its window (ordinary), alternated.
Reported: /predict's p50, p95 and p99 in both runs and the p95 ratio, the reads answered (200) and
turned away (503, the read gate), /readyz's p99 and max beside the readers, the look-back and ordinary
req/s and their ratio, the service's peak RSS (VmHWM) and its read workers'.

``--baseline-src`` serves the same rounds from another checkout's ``src`` (``git archive main src``
unpacked somewhere), alternated with this one, so the two are compared on the same machine load.
Needs wrk (``apt-get install wrk``):

    uv run python bench/reads.py [--replay out/replay] [--seconds 10] [--rounds 2] [--baseline-src DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
from serve import _free_port, _server, _wrk, ensure_replay  # the same wrk driver as bench/serve.py

from btcmlops.store import LoggedPrediction, PriceStore

LOG_ROWS = 50_000
READY_EVERY_S = 0.05
READERS_ONLY_S = 8
"""How long /readyz is asked beside the readers alone, before the forecasts' load joins them."""


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _reads(url: str, connections: int, seconds: int, out: dict[str, str]) -> None:
    done = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s",
         f"{url}/predictions?limit=10000"],
        capture_output=True, text=True,
    )  # fmt: skip
    out["stdout"] = done.stdout


def _poll_ready(
    url: str, stop: threading.Event, seconds: list[tuple[float, float]], statuses: list[int]
) -> None:
    """Ask ``/readyz`` every ``READY_EVERY_S``; each answer's (when it came, how long it took)."""
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            started = time.monotonic()
            try:
                statuses.append(client.get(f"{url}/readyz").status_code)
            except httpx.HTTPError:
                statuses.append(0)
            seconds.append((time.monotonic(), time.monotonic() - started))
            stop.wait(READY_EVERY_S)


def _p99_ms(seconds: list[float]) -> float:
    return statistics.quantiles(seconds, n=100, method="inclusive")[98] * 1e3


def _seed(scratch: Path) -> list[str]:
    """Log four live forecasts of each of the last hours; the hours' stamps."""
    store = PriceStore(f"sqlite:///{scratch / 'prices.db'}")
    candles = store.read_candles()
    hours = [h.to_pydatetime() for h in candles["open_time"].iloc[-LOG_ROWS // 4 :]]
    store.log_predictions(
        [
            LoggedPrediction(hour, hour + timedelta(hours=1), 100.0 + n, 100.0, 1, hour, hour)
            for n in range(4)
            for hour in hours
        ]
    )
    store.dispose()
    return [h.strftime("%Y-%m-%dT%H:%M:%SZ") for h in hours]


@dataclass
class Round:
    """One service's figures."""

    alone: dict[str, float]
    loaded: dict[str, float]
    pages: int
    refused: int
    ready_p99_ms: float
    ready_max_ms: float
    ready_loaded_p99_ms: float
    ready_not_200: int
    ready_after: int
    served_live_by: int | None
    look_back_rps: float
    ordinary_rps: float
    peak_mb: float
    workers_mb: list[int]


def _round(replay: Path, source: Path | None, seconds: int, bodies: list[str], hours: list[str]) -> Round:
    """One service (served from ``source``, else this checkout) through the three measurements."""
    scratch = Path(tempfile.mkdtemp(prefix="btcmlops-bench-reads-"))
    try:
        for name in ("prices.db", "mlflow.db"):
            shutil.copy(replay / name, scratch / name)
        _seed(scratch)
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        service = [sys.executable, "-m", "btcmlops", "serve", "--replay", str(scratch), "--port", str(port)]
        # The read workers at nice 10, as where the api has its container to itself (the default is 0).
        env = {
            "BTCMLOPS_SERVE__READ_WORKER_NICE": "10",
            **os.environ,
            "BTCMLOPS_SERVE__LOG_FLUSH_INTERVAL_S": "1",
        }
        if source is not None:
            env["PYTHONPATH"] = str(source)
        with _server(service, url, "/readyz", env) as server:
            train_end = httpx.get(f"{url}/model", timeout=10).json()["training_window"]["train_end"]
            inside = [hour for hour in hours if hour < train_end[:19] + "Z"][-2000:]
            after = [hour for hour in hours if hour > train_end[:19] + "Z"][24:]
            deadline = time.monotonic() + 120  # the newest hour in memory: no forecast reads the store
            while httpx.post(f"{url}/predict", json={"timestamp": after[-1]}, timeout=10).status_code != 200:
                assert time.monotonic() < deadline, "the snapshot never held the newest hour"
                time.sleep(0.5)
            _wrk(url, "/predict", bodies, 8, 2, scratch)  # warm up
            first = httpx.get(f"{url}/predictions?limit=10000", timeout=180)  # read workers started
            assert first.status_code == 200, first.text
            alone = _wrk(url, "/predict", bodies, 64, seconds, scratch)
            reads: dict[str, str] = {}
            reader = threading.Thread(target=_reads, args=(url, 64, seconds + READERS_ONLY_S + 4, reads))
            ready_s: list[tuple[float, float]] = []
            ready_status: list[int] = []
            stop = threading.Event()
            poller = threading.Thread(target=_poll_ready, args=(url, stop, ready_s, ready_status))
            reader.start()
            time.sleep(2)
            poller.start()
            time.sleep(READERS_ONLY_S)
            forecasting_from = time.monotonic()
            loaded = _wrk(url, "/predict", bodies, 64, seconds, scratch)
            stop.set()
            poller.join()
            reader.join()
            ready = httpx.get(f"{url}/readyz", timeout=5).status_code
            sample = httpx.post(f"{url}/predict", json={"timestamp": inside[-1]}, timeout=10).json()
            look_back = [json.dumps({"timestamp": hour}) for hour in inside]
            ordinary = [json.dumps({"timestamp": hour}) for hour in after]
            _wrk(url, "/predict", look_back, 8, 2, scratch)  # warm up
            throughput: dict[str, list[float]] = {"look_back": [], "ordinary": []}
            for _ in range(2):  # alternated: the machine's load falls on both alike
                for kind, asked in (("look_back", look_back), ("ordinary", ordinary)):
                    throughput[kind].append(_wrk(url, "/predict", asked, 8, seconds // 2, scratch)["rps"])
            peak = _peak_rss_mb(server.pid)
            workers = [
                round(_peak_rss_mb(child))
                for child in _children(server.pid)
                if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
            ]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    out = reads["stdout"]
    total = int(out.split(" requests in ")[0].split()[-1])
    refused = int(out.split("Non-2xx or 3xx responses: ")[1].split()[0]) if "Non-2xx" in out else 0
    return Round(
        alone=alone,
        loaded=loaded,
        pages=total - refused,
        refused=refused,
        ready_p99_ms=_p99_ms([took for at, took in ready_s if at < forecasting_from]),
        ready_max_ms=max(took for at, took in ready_s if at < forecasting_from) * 1e3,
        ready_loaded_p99_ms=_p99_ms([took for at, took in ready_s if at >= forecasting_from]),
        ready_not_200=sum(status != 200 for status in ready_status),
        ready_after=ready,
        served_live_by=sample.get("served_live_by"),
        look_back_rps=statistics.mean(throughput["look_back"]),
        ordinary_rps=statistics.mean(throughput["ordinary"]),
        peak_mb=peak,
        workers_mb=workers,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replay", type=Path, default=Path("out/replay"))
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--baseline-src", type=Path, help="another checkout's src, served alternately")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    replay = ensure_replay(args.replay)
    store = PriceStore(f"sqlite:///{replay / 'prices.db'}")
    last = store.read_candles()["open_time"].iloc[-LOG_ROWS // 4 :]
    hours = [h.strftime("%Y-%m-%dT%H:%M:%SZ") for h in last]
    store.dispose()
    bodies = [json.dumps({"timestamp": stamp}) for stamp in random.Random(1).sample(hours[100:], 1000)]
    sources: list[tuple[str, Path | None]] = [("this checkout", None)]
    if args.baseline_src is not None:
        sources.insert(0, ("baseline", args.baseline_src.resolve()))
    print(f"load average at start: {os.getloadavg()}")
    print(
        "| round | serving | /predict alone req/s, p50 / p95 / p99 ms | beside 64 readers req/s, "
        "p50 / p95 / p99 ms | p95 ratio | pages 200 / 503 | /readyz beside the readers p99 / max ms (p99 "
        "with the forecasts' load too) | look-back / "
        "ordinary req/s (ratio) | served_live_by | peak RSS service (workers) MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for number in range(1, args.rounds + 1):
        for name, source in sources:
            row = _round(replay, source, args.seconds, bodies, hours)
            alone, loaded = row.alone, row.loaded
            print(
                f"| {number} | {name} | {alone['rps']:.0f}, {alone['p50_ms']:.1f} / {alone['p95_ms']:.1f} / "
                f"{alone['p99_ms']:.1f} | {loaded['rps']:.0f}, {loaded['p50_ms']:.1f} / "
                f"{loaded['p95_ms']:.1f} / {loaded['p99_ms']:.1f} | "
                f"{loaded['p95_ms'] / alone['p95_ms']:.2f} | "
                f"{row.pages} / {row.refused} | {row.ready_p99_ms:.0f} / {row.ready_max_ms:.0f} "
                f"({row.ready_loaded_p99_ms:.0f}; {row.ready_not_200} not 200, after: {row.ready_after}) | "
                f"{row.look_back_rps:.0f} / {row.ordinary_rps:.0f} "
                f"({row.look_back_rps / row.ordinary_rps:.2f}) | "
                f"{row.served_live_by} | {row.peak_mb:.0f} ({row.workers_mb}) |",
                flush=True,
            )
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
