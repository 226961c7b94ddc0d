"""Benchmark: the inference service against its ceiling and against ``mlflow models serve``.

In one run, with the same champion model, wrk measures requests/s and p50/p99 latency at 1 and 8
connections for: a do-nothing FastAPI endpoint (the ceiling), ``mlflow models serve`` of the champion
(one row of features per request: the usual alternative) and ``POST /predict`` by timestamp. Then it
measures the hot swap under load: the time from an alias change to the first response from the new
version, and the failed requests while the alias moves. Targets: >= 10x mlflow models serve, >= 60 %
of the ceiling, zero errors during swaps.

Needs wrk (``apt-get install wrk``) and a replay's output (made first if missing):

    uv run python bench/serve.py [--replay out/replay] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from btcmlops.features import build_features
from btcmlops.registry import CHAMPION, ModelRegistry
from btcmlops.settings import Settings
from btcmlops.store import PriceStore

BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent
JSON = {"content-type": "application/json"}
LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies = {BODIES}
local i = 0
request = function()
  i = i + 1
  return wrk.format(nil, "PATH", nil, bodies[(i % #bodies) + 1])
end
done = function(summary, latency, requests)
  io.write(string.format("p95_us %d\\n", latency:percentile(95)))
end
"""


def ensure_replay(out: Path) -> Path:
    """A replay's output directory (absolute), made with ``btcmlops simulate`` first if missing."""
    replay = out.resolve()
    if not (replay / "mlflow.db").exists():
        subprocess.run([sys.executable, "-m", "btcmlops", "simulate", "--out", str(replay)], check=True)
    return replay


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _server(
    command: list[str], url: str, ready_path: str, env: dict[str, str], log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` started, once ``url + ready_path`` answers 200 (its output in ``log``, if given);
    stopped at the end. Every bench that measures a server process starts it here."""
    with log.open("wb") if log is not None else open(os.devnull, "wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"{url}{ready_path}", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            tail = log.read_text()[-2000:] if log is not None else ""
            raise RuntimeError(f"{command} not ready{': ' + tail if tail else ''}")
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wrk(
    url: str, path: str, bodies: list[str], connections: int, seconds: int, scratch: Path
) -> dict[str, float]:
    script = scratch / "post.lua"
    script.write_text(LUA.replace("BODIES", ",".join(json.dumps(b) for b in bodies)).replace("PATH", path))
    threads = min(connections, 2)
    done = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode:
        raise RuntimeError(f"wrk failed: {done.stdout}{done.stderr}")
    out = done.stdout

    def latency(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)", out, re.M)
        assert match, out
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": latency("50"),
        "p95_ms": int(re.search(r"^p95_us (\d+)", out, re.M).group(1)) / 1000,  # type: ignore[union-attr]
        "p99_ms": latency("99"),
        "errors": (int(errors.group(1)) if errors else 0) + (sum(map(int, socket.groups())) if socket else 0),
    }


def _measure(
    name: str, url: str, path: str, bodies: list[str], seconds: int, scratch: Path
) -> dict[str, object]:
    _wrk(url, path, bodies, 8, 2, scratch)  # warm up
    row: dict[str, object] = {"server": name}
    for connections in (1, 8):
        row[connections] = _wrk(url, path, bodies, connections, seconds, scratch)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replay", type=Path, default=Path("out/replay"))
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    replay = ensure_replay(args.replay)
    tracking_uri = f"sqlite:///{replay / 'mlflow.db'}"
    settings = Settings()
    store = PriceStore(f"sqlite:///{replay / 'prices.db'}")
    candles = store.read_candles()
    store.dispose()
    features = build_features(candles).loc["2024-01-01":]  # type: ignore[misc]
    hours = [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in random.Random(1).sample(list(features.index), 1000)]
    predict_bodies = [json.dumps({"timestamp": hour}) for hour in hours]
    columns = [c for c in features.columns if c != "close"]
    invocation_bodies = [
        json.dumps({"dataframe_split": {"columns": columns, "data": [row]}})
        for row in features.loc[:, columns].sample(200, random_state=1).to_numpy().tolist()
    ]
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "MLFLOW_TRACKING_URI": tracking_uri}
    uvicorn_flags = ["--host", "127.0.0.1", "--no-access-log", "--log-level", "warning"]
    rows = []
    scratch = Path(tempfile.mkdtemp(prefix="btcmlops-bench-serve-"))
    try:
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        noop = [
            str(BIN / "uvicorn"),
            "--app-dir",
            str(HERE),
            "noop_app:app",
            "--port",
            str(port),
            *uvicorn_flags,
        ]
        with _server(noop, url, "/docs", env):
            rows.append(
                _measure(
                    "do-nothing FastAPI (ceiling)", url, "/predict", predict_bodies, args.seconds, scratch
                )
            )
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        model_uri = f"models:/{settings.mlflow.registered_model}@{CHAMPION}"
        mlflow_serve = [str(BIN / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager", "local",
                        "-h", "127.0.0.1", "-p", str(port)]  # fmt: skip
        with _server(mlflow_serve, url, "/ping", env):
            rows.append(
                _measure("mlflow models serve", url, "/invocations", invocation_bodies, args.seconds, scratch)
            )
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        service = [sys.executable, "-m", "btcmlops", "serve", "--replay", str(replay), "--port", str(port)]
        with _server(service, url, "/readyz", env):
            rows.append(
                _measure("btcmlops POST /predict", url, "/predict", predict_bodies, args.seconds, scratch)
            )
            swap = _swap(url, tracking_uri, settings, predict_bodies, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print("| server | c=1 req/s | c=1 p50 ms | c=1 p99 ms | c=8 req/s | c=8 p50 ms | c=8 p99 ms | errors |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        one, eight = row[1], row[8]
        assert isinstance(one, dict)
        assert isinstance(eight, dict)
        print(
            f"| {row['server']} | {one['rps']:.0f} | {one['p50_ms']:.2f} | {one['p99_ms']:.2f} | "
            f"{eight['rps']:.0f} | {eight['p50_ms']:.2f} | {eight['p99_ms']:.2f} | "
            f"{one['errors'] + eight['errors']} |"
        )
    ceiling, alternative, ours = (row[8]["rps"] for row in rows)  # type: ignore[index]
    first_ceiling, first_alternative, first_ours = (row[1]["rps"] for row in rows)  # type: ignore[index]
    for label, (top, usual, mine) in (("c=1", (first_ceiling, first_alternative, first_ours)),
                                      ("c=8", (ceiling, alternative, ours))):  # fmt: skip
        print(f"{label}: {mine / usual:.1f}x mlflow models serve, {mine / top:.0%} of the ceiling")
    print(
        f"swap under load (c=8): alias change to first response from the new version "
        f"{', '.join(f'{s:.2f} s' for s in swap['seconds'])}; failed requests during swaps: {swap['errors']}"
    )


def _swap(
    url: str, tracking_uri: str, settings: Settings, bodies: list[str], scratch: Path
) -> dict[str, object]:
    """Move the alias away and back while wrk loads the service; time each takeover."""
    registry = ModelRegistry(
        tracking_uri, settings.mlflow.experiment, settings.mlflow.registered_model, create=False
    )
    champion = registry.get_by_alias(CHAMPION)
    assert champion is not None
    other = 1 if champion.version != 1 else 2
    result: dict[str, object] = {}
    load = threading.Thread(target=lambda: result.update(_wrk(url, "/predict", bodies, 8, 20, scratch)))
    load.start()
    seconds = []
    try:
        with httpx.Client(base_url=url, timeout=5) as client:
            for version in (other, champion.version, other, champion.version):
                time.sleep(2)
                moved = time.monotonic()
                registry.set_alias(CHAMPION, version)
                while (
                    client.post("/predict", content=bodies[0], headers=JSON).json()["model"]["version"]
                    != version
                ):
                    time.sleep(0.005)
                seconds.append(time.monotonic() - moved)
    finally:
        registry.set_alias(CHAMPION, champion.version)
        load.join()
    return {"seconds": seconds, "errors": result.get("errors")}


if __name__ == "__main__":
    main()
