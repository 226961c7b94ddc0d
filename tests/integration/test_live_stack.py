"""The live stack end to end: feed, trainer and inference service as separate ``btcmlops`` processes
on a MariaDB price store and a real mlflow server (MariaDB + moto's S3 server), with the shared sim
clock fast enough to replay January to April 2024 in about two minutes, and a client asking for the
newest hour's forecast without pause.

The candles are the shipped ones up to the end of April 2024, and the settings are the defaults
(margin 0). ``btcmlops simulate`` on the same file decides the same contests (this test checks it):
February keeps v1, March promotes v3 and April promotes v4, so the champion changes twice. The
run is deterministic (LightGBM with a fixed seed), so these promotions are certain.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest

from btcmlops.clock import SimClock, last_closed_hour, start_clock
from btcmlops.data import read_candle_file
from btcmlops.registry import CHAMPION, ModelRegistry
from btcmlops.settings import EMBEDDED_DATA_FILE
from btcmlops.store import PriceStore
from factories import write_project_csv
from services import CliProcess, free_port, wait_until

pytestmark = pytest.mark.integration

SPEED = 30.0
"""Sim hours per real second: a month in about 25 s, January to April in about 100 s."""
CLOCK_START = datetime(2023, 12, 31, tzinfo=UTC)
LAST_HOUR = "2024-04-30 23:00"
SHADOW_MONTHS = ["2024-02", "2024-03", "2024-04"]
RUN_BOUND_S = 420.0
"""Sim time to reach May plus the trainer's last round, on a busy two-core machine, with room."""


@dataclass(frozen=True)
class Answer:
    sent: float
    status: int
    version: int | None
    hour: str | None


class NewestHourClient:
    """Asks, back to back, for the forecast from the newest hour the service has, as a client would."""

    def __init__(self, url: str) -> None:
        self.answers: list[Answer] = []
        self._url = url
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self._url, timeout=10) as client:
            while not self._stop.is_set():
                sent = time.monotonic()
                hour = None
                try:
                    hour = client.get("/model").json()["latest_candle"]
                    response = client.post("/predict", json={"timestamp": hour})
                    version = response.json()["model"]["version"] if response.status_code == 200 else None
                    self.answers.append(Answer(sent, response.status_code, version, hour))
                except (httpx.HTTPError, ValueError, KeyError):
                    self.answers.append(Answer(sent, 0, None, hour))

    def __enter__(self) -> NewestHourClient:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def versions_in_order(self) -> list[int]:
        """The served versions, each run of equal answers collapsed to one."""
        served = [answer.version for answer in self.answers if answer.version is not None]
        return [version for n, version in enumerate(served) if n == 0 or served[n - 1] != version]


@pytest.fixture(scope="module")
def candle_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    candles = read_candle_file(EMBEDDED_DATA_FILE).candles
    path = tmp_path_factory.mktemp("live") / "candles-through-april-2024.csv"
    write_project_csv(candles.loc[candles["open_time"] <= pd.Timestamp(LAST_HOUR, tz="UTC")], str(path))
    return path


@pytest.fixture
def simulated(candle_file: Path, tmp_path: Path) -> dict[str, dict[str, object]]:
    """``btcmlops simulate`` on the same file and settings (embedded stores): its decisions by month."""
    out = tmp_path / "replay"
    result = subprocess.run(
        [sys.executable, "-m", "btcmlops", "simulate", "--data", str(candle_file), "--out", str(out)],
        env={**_base_env(), "BTCMLOPS_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    return {str(item["month"]): item for item in summary["decisions"]}


def _base_env() -> dict[str, str]:
    import os

    return {key: value for key, value in os.environ.items() if not key.startswith("BTCMLOPS_")}


@dataclass
class LiveStack:
    store: PriceStore
    registry: ModelRegistry
    api_url: str
    processes: dict[str, CliProcess]

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{process.log_tail(2500)}" for name, process in self.processes.items())


@pytest.fixture
def live_stack(
    candle_file: Path, mlflow_server: str, mariadb_url_factory: Callable[[], str], tmp_path: Path
) -> Iterator[LiveStack]:
    store_url = mariadb_url_factory()
    store = PriceStore(store_url)
    store.migrate()
    experiment, model = f"live-{uuid.uuid4().hex[:6]}", f"live-{uuid.uuid4().hex[:6]}"
    port = free_port()
    env = {
        "BTCMLOPS_HOME": str(tmp_path / "home"),
        "BTCMLOPS_STORE__URL": store_url,
        "BTCMLOPS_MLFLOW__TRACKING_URI": mlflow_server,
        "BTCMLOPS_MLFLOW__EXPERIMENT": experiment,
        "BTCMLOPS_MLFLOW__REGISTERED_MODEL": model,
        "BTCMLOPS_SERVE__POLL_INTERVAL_S": "0.5",
        "BTCMLOPS_SERVE__LOG_FLUSH_INTERVAL_S": "0.5",
    }
    processes = {
        "feed": CliProcess("feed", ["feed", "--data", str(candle_file), "--no-start-clock"], env, tmp_path),
        "trainer": CliProcess("trainer", ["trainer"], env, tmp_path),
        "api": CliProcess("api", ["serve", "--port", str(port)], env, tmp_path),
    }
    for process in processes.values():
        process.start()
    stack = LiveStack(
        store,
        ModelRegistry(mlflow_server, experiment, model, create=False),
        f"http://127.0.0.1:{port}",
        processes,
    )
    try:
        processes["api"].wait_for_http(f"{stack.api_url}/healthz", timeout_s=90)
        yield stack
    finally:
        for process in processes.values():
            process.stop()
        store.dispose()


def _real_time_of(clock: SimClock, sim: datetime) -> datetime:
    """When (real UTC) the running clock reached sim time ``sim``."""
    sim_hours = (sim - clock.sim_anchor) / timedelta(hours=1)
    return clock.real_anchor + timedelta(seconds=sim_hours / clock.speed)


def test_live_stack_replays_months_fairly_and_decides_as_the_replay_does(
    live_stack: LiveStack, simulated: dict[str, dict[str, object]]
) -> None:
    store, registry = live_stack.store, live_stack.registry
    started = time.monotonic()
    clock = start_clock(CLOCK_START, SPEED, datetime.now(UTC))
    store.write_clock(clock)  # every process reads it from here: the run starts now
    wait_until(
        lambda: httpx.get(f"{live_stack.api_url}/readyz").status_code == 200,
        timeout_s=120,
        what="v1 served",
        on_timeout=live_stack.logs,
    )

    with NewestHourClient(live_stack.api_url) as client:
        wait_until(
            lambda: len(store.list_decisions(registry.model_name)) >= len(SHADOW_MONTHS),
            timeout_s=RUN_BOUND_S,
            what="the April contest",
            on_timeout=live_stack.logs,
        )
        # The decision is recorded just before the alias moves: follow the promoted version.
        promoted = [d.challenger_version for d in store.list_decisions(registry.model_name) if d.promoted]
        expected = promoted[-1] if promoted else 1
        wait_until(
            lambda: client.versions_in_order()[-1:] == [expected],
            timeout_s=30,
            what=f"v{expected} served",
            on_timeout=live_stack.logs,
        )
    wall_s = time.monotonic() - started
    live_stack.processes["api"].stop()  # a graceful stop flushes the prediction log

    decisions = store.list_decisions(registry.model_name)
    months = [f"{decision.eval_start:%Y-%m}" for decision in decisions]
    # Contests on schedule: every month in order, each decided after its month closed in sim time.
    assert months == SHADOW_MONTHS
    for decision in decisions:
        # The month's last hour (eval_end) closes an hour after it opens.
        month_closed = _real_time_of(
            clock, pd.Timestamp(decision.eval_end).to_pydatetime() + timedelta(hours=1)
        )
        lag = (pd.Timestamp(decision.decided_at).to_pydatetime() - month_closed).total_seconds()
        assert 0 <= lag < 120, f"{decision.eval_start:%Y-%m} decided {lag:.1f} s after its month closed"
    # The same decisions as `btcmlops simulate` on the same data and settings.
    for decision, month in zip(decisions, months, strict=True):
        replayed = simulated[month]
        assert (decision.champion_version, decision.challenger_version, decision.promoted) == (
            replayed["champion_version"],
            replayed["challenger_version"],
            replayed["promoted"],
        ), month
        assert decision.champion_mae == pytest.approx(replayed["champion_mae"], rel=1e-9)
        assert decision.challenger_mae == pytest.approx(replayed["challenger_mae"], rel=1e-9)
        assert decision.naive_mae == pytest.approx(replayed["naive_mae"], rel=1e-9)
    champions = [1] + [decision.challenger_version for decision in decisions if decision.promoted]
    assert len(champions) >= 2, "no promotion: the champion never changed"
    final = registry.get_by_alias(CHAMPION)
    assert final is not None
    assert final.version == champions[-1]

    # The service followed each change, in order, and no request failed.
    assert client.versions_in_order() == champions
    failed = [answer for answer in client.answers if answer.status != 200]
    assert not failed, failed[:5]

    # Every logged forecast was made from an hour that had closed (and was in the store) at that sim time.
    logged = store.read_predictions(limit=10_000_000)
    assert len(logged) == len(client.answers)
    for row in logged:
        closed = last_closed_hour(clock.sim_now(row.served_at))
        assert row.timestamp <= closed, f"forecast from {row.timestamp} served at sim {closed}"
    stored = set(store.read_candles()["open_time"])
    assert {pd.Timestamp(row.timestamp) for row in logged} <= stored

    first_served = {
        version: next(a.sent for a in client.answers if a.version == version) - started
        for version in champions
    }
    print(
        f"\nlive stack: {len(months)} contests ({months[0]}..{months[-1]}), sim "
        f"{CLOCK_START:%Y-%m-%d}..{clock.sim_now(datetime.now(UTC)):%Y-%m-%d} at {SPEED:g} h/s, "
        f"wall {wall_s:.0f} s, {len(client.answers)} requests, {len(failed)} failed, "
        f"champions {champions} first served at {', '.join(f'{s:.0f} s' for s in first_served.values())}"
    )
