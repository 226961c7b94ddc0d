"""A change by hand cut off by ``kill -9`` of the inference service at each of its steps is rolled
forward without a human: by the restarted service, by the running trainer with the clock finished,
or by both at once (one does it, the other nothing).

Real: ``btcmlops serve`` and ``btcmlops trainer`` processes (forked from an interpreter that has
imported them, ``tests/forked.py``), the ``mlflow server`` (MariaDB backend,
moto's S3 behind its artifact proxy; the session's shared one), a MariaDB price store, the HTTP
request ``POST /model/promote`` or ``/model/rollback`` and the kernel's SIGKILL. Injected: *where*
the service dies (``tests/crash_serve.py``, the same service with a step hook that kills its own
process at a named step boundary of the change, the seam ``ChampionChanges`` calls). No one runs
``registry reconcile``: the test polls ``registry check`` (``ChampionChanges.problems``) until it is
clean, within the stated bound (``change_grace_s + change_check_s``, here 3 + 1 s, plus the start of
the repairing process), and prints how long the repair took.

The world is built once (January to April closed in this process: v1 archived, v2 champion, v3
challenger) and the cases run on it in order, each changing the champion from wherever the last left
it; the market ends with April and the clock is paused after it, so the trainer has nothing left to
close.
"""

from __future__ import annotations

import secrets
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from btcmlops.calendar import Month
from btcmlops.clock import start_clock
from btcmlops.contest.changes import ChampionChanges
from btcmlops.contest.contest import Contest
from btcmlops.registry import CHALLENGER, CHAMPION, ModelRegistry
from btcmlops.settings import ContestSettings, ModelSettings
from btcmlops.store import PriceStore
from factories import make_candles
from services import CliProcess, free_port, wait_until

pytestmark = pytest.mark.integration

CANDLES = make_candles(
    "2021-01-01", "2021-04-30 23:00", ar=[("2021-01-01", -0.8), ("2021-03-01", 0.8)], noise=0.003
)
"""The market ends with April: once it is closed nothing is left to close."""
MONTHS = [Month(2021, 1), Month(2021, 2), Month(2021, 3), Month(2021, 4)]
MODEL = ModelSettings(num_boost_round=15, min_data_in_leaf=20)
RULE = ContestSettings(first_train_months=2)
AFTER_THE_END = datetime(2021, 6, 1, 2, tzinfo=UTC)
GRACE_S, CHECK_S = 3.0, 1.0
START_S = 60.0
"""Room for a service or trainer process to start on a busy two-core machine (imports, MLflow)."""
REPAIR_BOUND_S = GRACE_S + CHECK_S + START_S
RUNNER = Path(__file__).resolve().parents[1] / "crash_serve.py"
API_ACTOR = "api (X-API-Key)"


class Process(CliProcess):
    """A process of the stack, forked from the preloaded interpreter (``tests/forked.py``); of this
    process's ``BTCMLOPS_*`` variables it sees only the world's."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_dir: Path) -> None:
        super().__init__(name, [], env, log_dir, forked=True)
        self._command = command
        self._env = {k: v for k, v in self._env.items() if not k.startswith("BTCMLOPS_") or k in env}


@dataclass
class World:
    name: str
    store: PriceStore
    registry: ModelRegistry
    env: dict[str, str]
    key: str
    log_dir: Path

    def changes(self) -> ChampionChanges:
        return ChampionChanges(
            self.registry, self.store.journal, self.store, now=lambda: datetime.now(UTC), sim_now=lambda: None
        )

    def serve(self, name: str, port: int, crash_at: str | None = None, steps: Path | None = None) -> Process:
        env = {**self.env, "BTCMLOPS_SERVE__PORT": str(port)}
        if crash_at is None:
            return Process(name, [sys.executable, "-m", "btcmlops", "serve"], env, self.log_dir)
        command = [sys.executable, str(RUNNER), "--at", crash_at, "--steps", str(steps)]
        return Process(name, command, env, self.log_dir)

    def trainer(self, name: str) -> Process:
        return Process(name, [sys.executable, "-m", "btcmlops", "trainer"], self.env, self.log_dir)


@pytest.fixture(scope="module")
def world(
    mlflow_server: str, mariadb_url_factory: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """January to April closed: v1 archived, v2 champion (won April), v3 challenger in shadow."""
    name = f"svc-crash-{uuid.uuid4().hex[:6]}"
    url = mariadb_url_factory()
    store = PriceStore(url)
    store.migrate()
    store.upsert_candles(CANDLES)
    store.write_clock(start_clock(AFTER_THE_END, 1.0, datetime.now(UTC), paused=True))
    registry = ModelRegistry(mlflow_server, name, name)
    contest = Contest(MODEL, RULE, registry, store, store)
    for month in MONTHS:
        contest.close_month(month)
    assert contest.changes.problems() == []
    key = secrets.token_hex(16)
    env = {
        "BTCMLOPS_HOME": str(tmp_path_factory.mktemp("home")),
        "BTCMLOPS_STORE__URL": url,
        "BTCMLOPS_STORE__CHANGE_GRACE_S": str(GRACE_S),
        "BTCMLOPS_STORE__CHANGE_CHECK_S": str(CHECK_S),
        "BTCMLOPS_MLFLOW__TRACKING_URI": mlflow_server,
        "BTCMLOPS_MLFLOW__EXPERIMENT": name,
        "BTCMLOPS_MLFLOW__REGISTERED_MODEL": name,
        "BTCMLOPS_SERVE__CONTROL_KEY": key,
        "BTCMLOPS_SERVE__POLL_INTERVAL_S": "0.5",
        "BTCMLOPS_TRAINER__INTERVAL_S": "0.2",
        "BTCMLOPS_TRAINER__LEASE_TTL_S": "3",
        "BTCMLOPS_CONTEST__FIRST_TRAIN_MONTHS": str(RULE.first_train_months),
        "BTCMLOPS_MODEL__NUM_BOOST_ROUND": str(MODEL.num_boost_round),
        "BTCMLOPS_MODEL__MIN_DATA_IN_LEAF": str(MODEL.min_data_in_leaf),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",  # as `btcmlops serve` sets it
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    }
    yield World(name, store, registry, env, key, tmp_path_factory.mktemp("logs"))
    store.dispose()


def _logs(*processes: Process) -> Callable[[], str]:
    return lambda: "\n".join(f"--- {p.name}\n{p.log_tail(3000)}" for p in processes)


CASES = [
    # (what is changed, the step the service dies at, who repairs)
    ("promote the challenger", "registry.challenger_alias_removed", "serve"),
    ("promote", "journal.begun", "serve"),
    ("promote", "registry.promoted_status", "serve"),
    ("promote", "registry.champion_alias", "serve"),
    ("promote", "registry.archived_status", "serve"),
    ("promote", "journal.finish", "serve"),
    ("rollback", "registry.champion_alias", "trainer"),
    ("rollback", "registry.archived_status", "trainer and serve"),
]


@pytest.mark.parametrize(("change", "step", "repairer"), CASES, ids=[f"{c[1]}-{c[2]}" for c in CASES])
def test_a_service_killed_at_any_step_of_a_change_by_hand_is_repaired_without_reconcile(
    change: str, step: str, repairer: str, world: World, tmp_path: Path
) -> None:
    versions = world.registry.versions()
    champion = next(v.version for v in versions if CHAMPION in v.aliases)
    audit = world.store.journal.audit(world.name)
    if change == "promote the challenger":
        wanted = next(v.version for v in versions if CHALLENGER in v.aliases)
    elif change == "promote":
        wanted = min(v.version for v in versions if v.version != champion)
    else:
        assert audit[-1].from_version is not None
        wanted = audit[-1].from_version
    path, body = (
        ("/model/rollback", {"reason": f"cut off at {step}"})
        if change == "rollback"
        else ("/model/promote", {"version": wanted, "reason": f"cut off at {step}"})
    )
    steps = tmp_path / "steps.txt"
    port = free_port()
    crashed = world.serve("crashed-serve", port, crash_at=step, steps=steps)
    repairers: list[Process] = []
    if "trainer" in repairer:  # running before the crash, idle: the clock has finished
        repairers.append(world.trainer("trainer").start())
        wait_until(
            lambda: "holds the lease until" in repairers[0].log_tail(),
            timeout_s=START_S,
            what="the trainer",
            on_timeout=_logs(*repairers),
        )
    try:
        crashed.start()
        crashed.wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout_s=START_S)
        with pytest.raises(httpx.TransportError):  # no answer: the process died inside the request
            httpx.post(
                f"http://127.0.0.1:{port}{path}", json=body, headers={"X-API-Key": world.key}, timeout=60
            )
        assert crashed.process is not None
        assert crashed.process.wait(timeout=30) == -signal.SIGKILL, crashed.log_tail()
        killed_at = time.monotonic()
        assert steps.read_text().splitlines()[-1] == step
        pending = world.store.journal.pending(world.name)
        assert pending is not None
        assert pending.actor == API_ACTOR, pending
        assert any(f"change #{pending.id}" in problem for problem in world.changes().problems())

        if "serve" in repairer:
            repairers.append(world.serve("serve", free_port()).start())
        wait_until(
            lambda: world.changes().problems() == [],
            timeout_s=REPAIR_BOUND_S,
            what="registry check clean without reconcile",
            on_timeout=_logs(crashed, *repairers),
            every_s=0.2,
        )
        repaired_s = time.monotonic() - killed_at
        since_begun_s = (datetime.now(UTC) - pending.created_at).total_seconds()
    finally:
        for process in (*repairers, crashed):
            process.stop()

    print(
        f"\n{change} killed at {step}, repaired by {repairer}: registry check clean {repaired_s:.1f} s "
        f"after the kill, {since_begun_s:.1f} s after the change began "
        f"(grace {GRACE_S:g} s + check {CHECK_S:g} s)"
    )
    assert world.registry.get_by_alias(CHAMPION).version == wanted  # type: ignore[union-attr]
    audited = [row for row in world.store.journal.audit(world.name) if row.change_id == pending.id]
    assert [(r.from_version, r.to_version, r.source, r.actor, r.reason) for r in audited] == [
        (champion, wanted, "manual", API_ACTOR, f"cut off at {step}")
    ]
    if repairer == "trainer":  # running all along: the stated bound, with room for one of its rounds
        assert since_begun_s <= GRACE_S + CHECK_S + 10, since_begun_s
    logs = [p.log_tail(200_000) for p in repairers]
    assert sum(f"repaired change #{pending.id} ({pending.kind}" in log for log in logs) == 1, logs
    assert all("Traceback" not in log for log in logs), logs
