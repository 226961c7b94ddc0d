"""The crash matrix as real processes: a live trainer killed with SIGKILL at every step boundary of a
month close, a second trainer waiting on the lease, and an MLflow server answering 503 for a while.

Real: the trainer processes (``btcmlops trainer``, and ``tests/crash_trainer.py``, which builds the
same objects from the same ``BTCMLOPS_*`` settings; each its own process, forked from an interpreter
that has imported them, ``tests/forked.py``), the ``mlflow server`` (MariaDB backend, moto's S3
server behind its artifact proxy; the session's shared one), one MariaDB price store per case, the
lease in it, and the signal: the kernel's SIGKILL of the whole process, with no ``finally`` and no
lease release. Injected: *where* the process dies (the crash runner's contest step hook kills its own
process at the N-th step boundary of the April close, the seam ``tests/unit/contest/
test_crash_recovery.py`` raises from), and the 503s (a threaded HTTP proxy in this process, between the
trainer and the mlflow server, that answers 503 to every request while its window is open). MLflow's
own client retries are turned down in the trainer's environment, so what survives the 503s is the
trainer's own retry and reconcile.

In each case of the matrix a standby ``btcmlops trainer`` starts beside the crashing runner (the
lease is taken in the runner's name as it starts, so the standby is certain to find it held, and its
start-up overlaps the runner's work); it logs that it waits and for whom, takes over once the dead
runner's lease (3 s) has expired, reconciles the half-done April close and closes May.

The market is small and synthetic (January to May 2021, a regime flip on March 1, so April promotes:
every kind of step happens in its close), the models are small (15 rounds), and the clock is paused
past the end so every month is due at once. Every case runs in its own database with its own
experiment and registered model on the shared mlflow server, and closes the months before the cut
(January to March) in the crashing process itself: MLflow state cannot be copied, so the pre-cut
state is not prepared once. The uninterrupted reference run (the runner without a crash point, which
also records the step boundaries the April close passes) is compared with every crashed-and-finished
case: versions, decisions, audit, contest runs, closed months, invariants and the served forecasts.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from btcmlops.calendar import Month
from btcmlops.clock import start_clock
from btcmlops.contest.contest import Contest
from btcmlops.registry import ModelRegistry
from btcmlops.services.trainer import LEASE_NAME
from btcmlops.settings import ContestSettings, ModelSettings
from btcmlops.store import PriceStore
from factories import OncePerRun, make_candles
from registry_state import registry_state
from services import CliProcess, wait_until

pytestmark = pytest.mark.integration

CANDLES = make_candles(
    "2021-01-01", "2021-05-31 23:00", ar=[("2021-01-01", -0.8), ("2021-03-01", 0.8)], noise=0.003
)
MONTHS = ["2021-01", "2021-02", "2021-03", "2021-04", "2021-05"]
CUT = Month(2021, 4)
"""The close cut off: the challenger wins April, so every step of a promotion happens in it."""
SERVED = [Month(2021, 3), CUT, Month(2021, 5)]
MATRIX = 19
"""Step boundaries the April close passes; the matrix kills the trainer at each in turn."""
MODEL = ModelSettings(num_boost_round=15, min_data_in_leaf=20)
RULE = ContestSettings(first_train_months=2)
AFTER_THE_END = datetime(2021, 6, 1, 2, tzinfo=UTC)
"""Sim time of the paused clock: May's last hour has closed, so January to May are all due."""
LEASE_TTL_S = 3.0
"""Short, so a dead trainer's lease expires quickly; renewed every second, so a live one keeps it."""
RUNNER = Path(__file__).resolve().parents[1] / "crash_trainer.py"
TOOK_LEASE = "holds the lease until"
WAITING = "waiting: another trainer"
"""What the trainer logs on taking the lease, and while another trainer holds it."""
RUN_BOUND_S = 180.0
"""Time for a trainer to close its months on a busy two-core machine, with room."""


class TrainerProcess(CliProcess):
    """A trainer in its own process and process group, forked from the preloaded interpreter
    (``tests/forked.py``); of this process's ``BTCMLOPS_*`` variables it sees only the case's."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_dir: Path) -> None:
        super().__init__(name, [], env, log_dir, forked=True)
        self._command = command
        self._env = {k: v for k, v in self._env.items() if not k.startswith("BTCMLOPS_") or k in env}


@dataclass
class Case:
    """One price store database and one experiment and registered model on the mlflow server."""

    name: str
    store: PriceStore
    tracking_uri: str
    env: dict[str, str]
    log_dir: Path

    def trainer(self, name: str = "trainer") -> TrainerProcess:
        """``btcmlops trainer``."""
        return TrainerProcess(name, [sys.executable, "-m", "btcmlops", "trainer"], self.env, self.log_dir)

    def runner(self, name: str, *args: str) -> TrainerProcess:
        """``tests/crash_trainer.py``: the same trainer, with a crash point."""
        return TrainerProcess(name, [sys.executable, str(RUNNER), *args], self.env, self.log_dir)

    def set_clock(self, sim_now: datetime) -> None:
        """Move the paused sim clock to ``sim_now``."""
        self.store.write_clock(start_clock(sim_now, 1.0, datetime.now(UTC), paused=True))

    def closed(self) -> list[str]:
        return [entry.month or "" for entry in self.store.journal.closed_months(self.name)]

    def settled(self) -> bool:
        """Every month closed and nothing pending."""
        return self.closed() == MONTHS and self.store.journal.pending(self.name) is None


def _case(
    label: str,
    tracking_uri: str,
    store_url: str,
    tmp_path: Path,
    *,
    sim_now: datetime = AFTER_THE_END,
    mlflow_env: dict[str, str] | None = None,
) -> Case:
    name = f"crash-{label}-{uuid.uuid4().hex[:6]}"
    store = PriceStore(store_url)
    store.migrate()
    store.upsert_candles(CANDLES)
    env = {
        "BTCMLOPS_HOME": str(tmp_path / "home"),
        "BTCMLOPS_STORE__URL": store_url,
        "BTCMLOPS_MLFLOW__TRACKING_URI": tracking_uri,
        "BTCMLOPS_MLFLOW__EXPERIMENT": name,
        "BTCMLOPS_MLFLOW__REGISTERED_MODEL": name,
        "BTCMLOPS_TRAINER__INTERVAL_S": "0.2",
        "BTCMLOPS_TRAINER__LEASE_TTL_S": str(LEASE_TTL_S),
        "BTCMLOPS_TRAINER__RETRY_MAX_S": "2",
        "BTCMLOPS_CONTEST__FIRST_TRAIN_MONTHS": str(RULE.first_train_months),
        "BTCMLOPS_MODEL__NUM_BOOST_ROUND": str(MODEL.num_boost_round),
        "BTCMLOPS_MODEL__MIN_DATA_IN_LEAF": str(MODEL.min_data_in_leaf),
        **(mlflow_env or {}),
    }
    case = Case(name, store, tracking_uri, env, tmp_path)
    case.set_clock(sim_now)
    return case


def _logs(*processes: CliProcess) -> Callable[[], str]:
    return lambda: "\n".join(f"--- {p.name}\n{p.log_tail(3000)}" for p in processes)


def _wait_settled(case: Case, trainer: CliProcess, *others: CliProcess) -> None:
    """Wait until ``trainer`` has closed every month, failing at once if it exits."""

    def settled() -> bool:
        assert trainer.process is not None
        if trainer.process.poll() is not None:
            pytest.fail(f"{trainer.name} exited with {trainer.process.returncode}:\n{trainer.log_tail()}")
        return case.settled()

    wait_until(settled, timeout_s=RUN_BOUND_S, what="every month closed", on_timeout=_logs(trainer, *others))


def _wait_killed(process: CliProcess, timeout_s: float = RUN_BOUND_S) -> None:
    assert process.process is not None
    try:
        code = process.process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{process.name} did not reach its crash point:\n{process.log_tail()}")
    assert code == -signal.SIGKILL, f"{process.name} exited with {code}:\n{process.log_tail()}"


def _state(case: Case, tracking_uri: str) -> dict[str, Any]:
    """Everything a user could look at afterwards (see ``registry_state``), read by a fresh process."""
    registry = ModelRegistry(tracking_uri, case.name, case.name)
    return registry_state(Contest(MODEL, RULE, registry, case.store, case.store), case.store, SERVED)


@dataclass(frozen=True)
class Reference:
    state: dict[str, Any]
    steps: list[str]
    """The step boundaries the April close passed, in order."""


@pytest.fixture(scope="module")
def reference(
    mlflow_server: str,
    mariadb_url_factory: Callable[[], str],
    once_per_run: OncePerRun,
) -> Reference:
    """The uninterrupted run: the runner with no crash point, recording every step boundary.

    Run once for all xdist workers (each worker's crash cases run on its own mlflow server, but what
    they are compared with is data: the same for any server)."""

    def run(home: Path) -> tuple[dict[str, Any], list[str]]:
        case = _case("reference", mlflow_server, mariadb_url_factory(), home)
        steps = home / "steps.txt"
        trainer = case.runner("reference", "--steps", str(steps)).start()
        try:
            _wait_settled(case, trainer)
        finally:
            trainer.stop()
        try:
            state = _state(case, mlflow_server)
        finally:
            case.store.dispose()
        lines = steps.read_text().splitlines()
        return state, [line.split(" ", 1)[1] for line in lines if line.startswith(f"{CUT} ")]

    state, april = once_per_run("trainer-crash-reference", run)
    assert state["problems"] == []
    return Reference(state, april)


def test_the_reference_run_passes_every_boundary_the_matrix_cuts(reference: Reference) -> None:
    assert len(reference.steps) == MATRIX, f"{reference.steps}: make MATRIX {len(reference.steps)}"
    assert reference.state["months"] == MONTHS
    assert [d[4] for d in reference.state["decisions"] if d[0].month == CUT.month] == [True]


@pytest.mark.parametrize("index", range(MATRIX))
def test_a_trainer_killed_at_any_step_boundary_is_finished_by_the_next(
    index: int,
    reference: Reference,
    mlflow_server: str,
    mariadb_url_factory: Callable[[], str],
    tmp_path: Path,
) -> None:
    step = reference.steps[index]
    case = _case(f"k{index}", mlflow_server, mariadb_url_factory(), tmp_path)
    steps = tmp_path / "steps.txt"
    crashed = case.runner("crashed", "--month", str(CUT), "--at", str(index), "--steps", str(steps))
    standby = case.trainer("standby")
    try:
        # The standby starts beside the first trainer and must wait for it: the lease is taken in the
        # first one's name (as it names itself) when it starts, with room for its start-up.
        crashed.start()
        assert crashed.process is not None
        dead = f"{socket.gethostname()}:{crashed.process.pid}"
        case.store.journal.acquire_lease(LEASE_NAME, dead, now=datetime.now(UTC), ttl_s=RUN_BOUND_S)
        standby.start()
        _wait_killed(crashed)
        april = [line for line in steps.read_text().splitlines() if line.startswith(f"{CUT} ")]
        assert len(april) == index + 1, april
        assert april[-1] == f"{CUT} {step}", april
        _wait_settled(case, standby, crashed)
    finally:
        standby.stop()
        crashed.stop()

    log = standby.log_tail(100_000)
    waited, took = log.index(WAITING), log.index(TOOK_LEASE)
    assert waited < took, log[-3000:]
    assert f"({dead})" in log[waited:took], log[-3000:]  # it named the trainer it waited for
    assert TOOK_LEASE in crashed.log_tail(100_000)
    if step != "plan":  # the plan was in the journal: the standby finished it from there
        finished = f"finished the close of {CUT}, left half-done by a stopped trainer or a failed round"
        assert finished in log, log[-3000:]
    assert "round failed" not in log, log[-3000:]
    state = _state(case, mlflow_server)
    assert state["problems"] == [], f"after SIGKILL at {step}"
    assert state == reference.state, f"after SIGKILL at {step}"
    case.store.dispose()


def test_a_second_trainer_waits_for_the_lease_and_takes_over_when_the_first_is_killed(
    reference: Reference, mlflow_server: str, mariadb_url_factory: Callable[[], str], tmp_path: Path
) -> None:
    # February is due: the first trainer closes January and February (v1) and then idles.
    case = _case(
        "lease", mlflow_server, mariadb_url_factory(), tmp_path, sim_now=datetime(2021, 3, 1, 1, tzinfo=UTC)
    )
    first, second = case.trainer("first"), case.trainer("second")
    try:
        first.start()
        wait_until(
            lambda: case.closed() == MONTHS[:2],
            timeout_s=RUN_BOUND_S,
            what="February",
            on_timeout=_logs(first),
        )
        registry = ModelRegistry(mlflow_server, case.name, case.name)
        before = (registry.versions(), case.store.journal.entries(case.name))
        assert [v.version for v in before[0]] == [1]

        second.start()
        wait_until(
            lambda: WAITING in second.log_tail(),
            timeout_s=60,
            what="the second trainer waiting",
            on_timeout=_logs(first, second),
        )
        time.sleep(2 * LEASE_TTL_S)  # several of its polls, and several renewals of the first
        log = second.log_tail(100_000)
        assert first.process is not None
        waiting = next(line for line in log.splitlines() if WAITING in line)
        assert f":{first.process.pid})" in waiting, waiting
        assert TOOK_LEASE not in log, log
        assert (registry.versions(), case.store.journal.entries(case.name)) == before

        # A plain kill -9 between rounds (outside any step), then the rest of the market comes due.
        os.kill(first.process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        _wait_killed(first, 30)
        case.set_clock(AFTER_THE_END)
        wait_until(
            lambda: TOOK_LEASE in second.log_tail(),
            timeout_s=30,
            what="the takeover",
            on_timeout=_logs(first, second),
        )
        took_over_s = time.monotonic() - killed_at
        _wait_settled(case, second, first)
    finally:
        second.stop()
        first.stop()
    assert took_over_s <= LEASE_TTL_S * 2 + 5, took_over_s
    state = _state(case, mlflow_server)
    assert state["problems"] == []
    assert state == reference.state
    case.store.dispose()


class FailingProxy:
    """An HTTP proxy to the mlflow server that answers 503 to every request while its window is open."""

    _HOP = frozenset(
        {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}
    )

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.window = threading.Event()
        self.open_after: Callable[[str, str, bytes], bool] | None = None
        """Opens the window as soon as a request it matches has been forwarded (then disarms)."""
        self.refused = 0
        self.forwarded = 0
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=120)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    while self.rfile.readline().strip():  # trailers
                        pass
                    return b"".join(chunks)
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _relay(self) -> None:
                body = self._body()
                if proxy.window.is_set():
                    with proxy._lock:
                        proxy.refused += 1
                    message = b'{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "injected 503"}'
                    self._answer(503, [("Content-Type", "application/json")], message)
                    return
                headers = [(k, v) for k, v in self.headers.items() if k.lower() not in proxy._HOP]
                headers = [(k, v) for k, v in headers if k.lower() != "accept-encoding"]
                response = proxy._client.request(
                    self.command, proxy.upstream + self.path, content=body, headers=headers
                )
                with proxy._lock:
                    proxy.forwarded += 1
                    trigger = proxy.open_after
                    if trigger is not None and trigger(self.command, self.path, body):
                        proxy.window.set()
                        proxy.open_after = None
                kept = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in proxy._HOP]
                self._answer(response.status_code, kept, response.content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _relay  # noqa: N815 (http.server's names)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="failing-proxy", daemon=True)

    def __enter__(self) -> FailingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
        self._client.close()


WINDOW_S = 6.0
"""How long the proxy answers 503: several of the trainer's retries (0.4, 0.8, 1.6, 2, 2 s apart)."""


def _creates_a_contest_run(method: str, path: str, body: bytes) -> bool:
    if method != "POST" or not path.endswith("/mlflow/runs/create"):
        return False
    tags = {tag["key"]: tag["value"] for tag in json.loads(body).get("tags", [])}
    return tags.get("btcmlops.kind") == "contest"


@pytest.mark.parametrize("opening", ["close-pending", "contest-run-created"])
def test_the_trainer_survives_an_mlflow_server_answering_503_for_a_while(
    opening: str,
    reference: Reference,
    mlflow_server: str,
    mariadb_url_factory: Callable[[], str],
    tmp_path: Path,
) -> None:
    """The window opens while the April close is pending in the journal (whichever request comes
    next), or right after the April contest run is created (its params and metrics not yet logged)."""
    # MLflow's client retries a 503 seven times with a long backoff by default: once, at once, here.
    few_retries = {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
        "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
    }
    with FailingProxy(mlflow_server) as proxy:
        case = _case(f"503-{opening}", proxy.url, mariadb_url_factory(), tmp_path, mlflow_env=few_retries)
        if opening == "contest-run-created":
            proxy.open_after = _creates_a_contest_run
        trainer = case.trainer()
        try:
            trainer.start()
            if opening == "close-pending":  # April's, or May's if April went by between two polls
                wait_until(
                    lambda: (
                        (pending := case.store.journal.pending(case.name)) is not None
                        and (pending.month or "") >= str(CUT)
                    ),
                    timeout_s=RUN_BOUND_S,
                    what="the April close under way",
                    on_timeout=_logs(trainer),
                )
                proxy.window.set()
            else:
                wait_until(
                    proxy.window.is_set,
                    timeout_s=RUN_BOUND_S,
                    what="a contest run",
                    on_timeout=_logs(trainer),
                )
            opened_during = case.store.journal.pending(case.name)
            time.sleep(WINDOW_S)
            proxy.window.clear()
            assert trainer.process is not None
            assert trainer.process.poll() is None, trainer.log_tail()
            _wait_settled(case, trainer)
            assert trainer.process.poll() is None, trainer.log_tail()
        finally:
            trainer.stop()
    log = trainer.log_tail(200_000)
    failures = [line for line in log.splitlines() if "round failed" in line]
    assert proxy.refused > 0
    assert len(failures) >= 2, log[-4000:]
    assert all(re.search(r"; retry \d+ in \d+\.\d s$", line) for line in failures), failures
    assert "registry check:" not in log, log[-4000:]
    print(
        f"\n503 window of {WINDOW_S:g} s ({opening}) opened during the "
        f"{opened_during.month if opened_during else '(none pending)'} close: {proxy.refused} requests "
        f"refused, {len(failures)} failed rounds, {proxy.forwarded} forwarded; first: {failures[0][24:200]}"
    )
    state = _state(case, mlflow_server)
    assert state["problems"] == []
    assert state == reference.state
    case.store.dispose()
