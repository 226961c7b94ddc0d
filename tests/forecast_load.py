"""For the serving integration tests: two registered versions, a service's environment, the service as a
process, and a client that never pauses."""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from btcmlops.contest import TrainingWindow
from btcmlops.features import build_samples
from btcmlops.model import train_forecaster
from btcmlops.registry import CHAMPION, ModelRegistry
from btcmlops.settings import ModelSettings
from btcmlops.store import PriceStore
from factories import make_candles
from forked import ForkedProcess
from services import free_port, wait_for_http


@dataclass(frozen=True)
class Answer:
    at: float
    status: int
    """0: no answer (a connection error or a timeout)."""
    version: int | None
    seconds: float
    """How long the answer took."""


class NonStopClient:
    """Asks for forecasts back to back on its own thread and keeps every answer."""

    def __init__(self, url: str, hours: list[str], *, timeout_s: float = 10) -> None:
        self.answers: list[Answer] = []
        self._url = url
        self._hours = hours
        self._timeout_s = timeout_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self._url, timeout=self._timeout_s) as client:
            count = 0
            while not self._stop.is_set():
                hour = self._hours[count % len(self._hours)]
                count += 1
                started = time.monotonic()
                try:
                    response = client.post("/predict", json={"timestamp": hour})
                    status = response.status_code
                    version = response.json().get("model", {}).get("version") if status == 200 else None
                except httpx.HTTPError:
                    status, version = 0, None
                self.answers.append(Answer(time.monotonic(), status, version, time.monotonic() - started))

    def __enter__(self) -> NonStopClient:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def wait_for_answers(self, count: int = 5, timeout_s: float = 30) -> None:
        """Until ``count`` forecasts have been answered 200 (the service is answering under load)."""
        deadline = time.monotonic() + timeout_s
        while sum(1 for a in self.answers if a.status == 200) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"under {count} answers in {timeout_s} s: {self.answers[-3:]}")
            time.sleep(0.02)

    def first_with(self, version: int, after: float) -> float | None:
        return next((a.at for a in self.answers if a.at >= after and a.version == version), None)


def register_two_versions(tracking_uri: str, experiment: str, model: str) -> ModelRegistry:
    """v1 trained on January 2021, v2 on January and February (synthetic candles); no alias set."""
    samples = build_samples(make_candles("2021-01-01", "2021-02-28 23:00"))
    registry = ModelRegistry(tracking_uri, experiment, model)
    for rows, month in ((samples.iloc[:700], "2021-01"), (samples, "2021-02")):
        forecaster = train_forecaster(rows, ModelSettings(num_boost_round=20, min_data_in_leaf=20))
        window = TrainingWindow(
            rows["target_time"].iloc[0], rows["target_time"].iloc[-1], len(rows), "h", month
        )
        registry.register(forecaster, window, {}, {}, rows.head(5), run_name=month)
    return registry


@contextmanager
def serve_processes(env: dict[str, str], logs: list[Path]) -> Iterator[list[str]]:
    """One ``btcmlops serve`` process per log file (forked from the preloaded interpreter,
    ``tests/forked.py``), over free ports, started together; their URLs once every one is ready
    (``/readyz``). Stopped (SIGTERM, then SIGKILL past 20 s) at the end."""
    processes: list[tuple[ForkedProcess, str, Path]] = []
    try:
        for log_path in logs:
            port = free_port()
            log_path.write_bytes(b"")
            process = ForkedProcess(["-m", "btcmlops", "serve", "--port", str(port)], env, log_path)
            processes.append((process, f"http://127.0.0.1:{port}", log_path))
        for process, url, log_path in processes:
            wait_for_http(
                f"{url}/readyz",
                process,
                what="inference service",
                timeout_s=90,
                log_tail=lambda path=log_path: path.read_text()[-3000:],
            )
        yield [url for _, url, _ in processes]
    finally:
        for process, _, _ in processes:
            process.terminate()
        for process, _, _ in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def serve_process(
    store_url: str, registry: ModelRegistry, home: Path, env: dict[str, str] | None = None
) -> Iterator[str]:
    """``btcmlops serve`` on ``store_url`` and ``registry`` over a free port, ready; its URL.

    Default serve settings, but for ``env`` (more ``BTCMLOPS_`` variables); its log is printed at the end.
    """
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "service.log"
    environment = {
        **os.environ,
        "BTCMLOPS_HOME": str(home),
        "BTCMLOPS_STORE__URL": store_url,
        "BTCMLOPS_MLFLOW__TRACKING_URI": registry.tracking_uri,
        "BTCMLOPS_MLFLOW__EXPERIMENT": registry.experiment_name,
        "BTCMLOPS_MLFLOW__REGISTERED_MODEL": registry.model_name,
        **(env or {}),
    }
    try:
        with serve_processes(environment, [log_path]) as (url,):
            yield url
    finally:
        print(log_path.read_text()[-1500:])


def registry_and_env(
    tracking_uri: str, store_url: str, home: Path, poll_interval_s: float
) -> tuple[ModelRegistry, dict[str, str]]:
    """Candles in a fresh store, v1 and v2 registered (v1 champion), and a service's environment."""
    store = PriceStore(store_url)
    store.migrate()
    store.upsert_candles(make_candles("2021-01-01", "2021-02-28 23:00"))
    store.dispose()
    experiment, model = f"serving-{uuid.uuid4().hex[:6]}", f"serving-{uuid.uuid4().hex[:6]}"
    registry = register_two_versions(tracking_uri, experiment, model)
    registry.set_alias(CHAMPION, 1)
    env = {
        **os.environ,
        "BTCMLOPS_HOME": str(home),
        "BTCMLOPS_STORE__URL": store_url,
        "BTCMLOPS_MLFLOW__TRACKING_URI": tracking_uri,
        "BTCMLOPS_MLFLOW__EXPERIMENT": experiment,
        "BTCMLOPS_MLFLOW__REGISTERED_MODEL": model,
        "BTCMLOPS_SERVE__POLL_INTERVAL_S": str(poll_interval_s),
        "BTCMLOPS_SERVE__MAX_BACKOFF_S": "2",
        "BTCMLOPS_SERVE__REGISTRY_TIMEOUT_S": "3",
    }
    return registry, env
