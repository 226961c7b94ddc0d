"""Slow and idle clients are bounded: ``btcmlops serve`` keeps answering while thousands hold connections.

Two ``btcmlops serve`` processes (the real command, so the real uvicorn configuration from
``serving.server.run_server``) on copies of a small replay's stores, started together: one with the default
connection cap, one with a cap of ``CAP``; the header and body deadlines are set short (``DEADLINE_S``)
so the test takes seconds. Real sockets play the clients (``tests/held_connections.py``):

- 2,000 idle connections, 100 sending their headers and 50 their body at a byte a second: while they
  are held, a normal client's ``/healthz`` and ``/predict`` answer 200 (their latency printed beside a
  run alone); after the deadline every one of them has been closed by the server with a 408, and the
  service's open file descriptors are back to what they were;
- ``CAP`` idle connections on the capped service: a connection beyond them gets the 503 refusal at once
  (so does the normal client); once the idle ones are timed out, the normal client is answered again.

The price store is the replay's SQLite file: the bounds live in the HTTP layer, in front of any store.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from factories import ReplayOf
from held_connections import HeldConnections, ask_beside
from services import CliProcess, free_port

# One xdist worker (make test) runs the module: the two services are started once.
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("slow_clients")]

DEADLINE_S = 4.0
"""Header and body timeout of both services (10 s and 30 s by default)."""
CAP = 200
IDLE, SLOW_HEADERS, SLOW_BODIES = 2000, 100, 50
SLACK_S = 3.0
"""A connection past its deadline is closed within this (one event-loop turn on an idle machine; this
one has two cores shared with the attackers' own thread and other work)."""
ALONE_S = 2.0
BESIDE_UNTIL_S = DEADLINE_S - 1.0
"""The normal client asks until this long after the first held connection opened: all are held then."""
ANSWER_BOUND_S = 2.0
"""No answer of the normal client may take longer while the connections are held (not starved)."""
FD_SLACK = 16
"""Open descriptors of the service after the attack may exceed those before by this much (pooled store
connections, the write-ahead file), never by the thousands the attack held."""
HOURS = [f"2021-03-{day:02d}T{hour:02d}:00:00Z" for day in range(2, 28) for hour in range(0, 24, 5)]
"""Hours whose forecasts come from memory (within the replay's candles)."""


@dataclass(frozen=True)
class Service:
    url: str
    port: int
    pid: int
    process: CliProcess


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory, replay_of: ReplayOf) -> Iterator[dict[str, Service]]:
    """``btcmlops serve --replay`` twice, started together: "open" (the default cap) and "capped"."""
    home = tmp_path_factory.mktemp("slow-clients")
    replay = replay_of(home, "2021-01-01", "2021-04-30 23:00", ar=0.3, num_boost_round=10)
    env = {
        "BTCMLOPS_SERVE__HEADER_TIMEOUT_S": str(DEADLINE_S),
        "BTCMLOPS_SERVE__BODY_TIMEOUT_S": str(DEADLINE_S),
        "BTCMLOPS_SERVE__KEEP_ALIVE_TIMEOUT_S": "1",
    }
    started: dict[str, tuple[CliProcess, int]] = {}
    try:
        for name, extra in (("open", {}), ("capped", {"BTCMLOPS_SERVE__MAX_CONNECTIONS": str(CAP)})):
            stores = home / name  # its own copy of the stores (artifacts are shared, by absolute path)
            stores.mkdir()
            for database in ("prices.db", "mlflow.db"):
                shutil.copy(replay.out_dir / database, stores / database)
            port = free_port()
            process_env = {**env, **extra, "BTCMLOPS_HOME": str(stores / "home")}
            args = ["serve", "--replay", str(stores), "--port", str(port)]
            started[name] = (CliProcess(f"serve-{name}", args, process_env, home, forked=True).start(), port)
        for process, port in started.values():
            process.wait_for_http(f"http://127.0.0.1:{port}/readyz", timeout_s=90)
        ready = {}
        for name, (process, port) in started.items():
            assert process.process is not None
            ready[name] = Service(f"http://127.0.0.1:{port}", port, process.process.pid, process)
        yield ready
    finally:
        for process, _ in started.values():
            process.stop()
    for process, _ in started.values():
        log = process.log_tail(100_000)
        assert "Traceback" not in log, log[-4000:]


def test_thousands_of_idle_and_byte_a_second_connections_leave_healthz_and_predict_answering(
    services: dict[str, Service],
) -> None:
    service = services["open"]
    for hour in HOURS[:10]:  # warm up
        assert httpx.post(f"{service.url}/predict", json={"timestamp": hour}, timeout=10).status_code == 200
    fds_before = _open_fds(service.pid)
    alone = ask_beside(service.url, ALONE_S, HOURS)

    with HeldConnections(
        "127.0.0.1", service.port, idle=IDLE, slow_headers=SLOW_HEADERS, slow_bodies=SLOW_BODIES
    ) as attack:
        first_opened = min(held.opened_at for held in attack.held)
        beside = ask_beside(service.url, max(first_opened + BESIDE_UNTIL_S - time.monotonic(), 0.5), HOURS)
        held_at_peak = _open_fds(service.pid) - fds_before
        still_open = attack.open_count()
        all_closed = attack.wait_closed(DEADLINE_S + SLACK_S)
        summary = attack.closing_summary()
        fds_after = _open_fds(service.pid)

        print(
            f"\nopened {len(attack.held)} connections in {attack.opened_in_s:.2f} s; the service held "
            f"{held_at_peak} more descriptors; {still_open} still open when the normal client stopped"
            f"\nalone:  {alone.figures('/healthz')}; {alone.figures('/predict')}"
            f"\nbeside: {beside.figures('/healthz')}; {beside.figures('/predict')}; "
            f"failed {len(beside.failed())}\n{summary}"
            f"\nservice descriptors: {fds_before} before, {fds_after} after"
        )
        assert alone.failed() == []
        assert beside.failed() == [], beside.failed()[:10]
        assert len(beside.seconds("/predict")) >= 5
        assert max(seconds for _, _, seconds in beside.answers) <= ANSWER_BOUND_S
        assert still_open == len(attack.held), "connections were closed before their deadline"
        assert held_at_peak >= IDLE, "the service did not hold the idle connections it was given"
        assert all_closed, summary
        assert {held.status for held in attack.held} == {408}, summary
        assert all(held.held_s is not None and held.held_s <= DEADLINE_S + SLACK_S for held in attack.held)
        assert fds_after <= fds_before + FD_SLACK
    assert httpx.get(f"{service.url}/healthz", timeout=5).status_code == 200


def test_beyond_the_cap_a_connection_gets_503_at_once_and_the_cap_frees_when_idle_ones_time_out(
    services: dict[str, Service],
) -> None:
    service = services["capped"]
    assert httpx.get(f"{service.url}/healthz", timeout=5).status_code == 200
    with HeldConnections("127.0.0.1", service.port, idle=CAP) as idle:
        with HeldConnections("127.0.0.1", service.port, idle=50) as refused:
            assert refused.wait_closed(SLACK_S), refused.closing_summary()
        turned_away = httpx.get(f"{service.url}/healthz", timeout=5)
        turned_away_at = time.monotonic()
        assert turned_away.status_code == 503, turned_away.text
        assert turned_away.headers["retry-after"] == "1"
        assert "too many connections" in turned_away.text

        answered_at = None
        deadline = min(held.opened_at for held in idle.held) + DEADLINE_S + SLACK_S
        while answered_at is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"{service.url}/healthz", timeout=5).status_code == 200:
                    answered_at = time.monotonic()
            except httpx.TransportError:
                pass
            if answered_at is None:
                time.sleep(0.1)
        predicted = httpx.post(f"{service.url}/predict", json={"timestamp": HOURS[0]}, timeout=10)
        idle_closed = idle.wait_closed(SLACK_S)
        print(
            f"\ncap {CAP}: {refused.closing_summary()}\nthe normal client: 503 while the cap was full, 200 "
            f"{(answered_at or float('nan')) - turned_away_at:.2f} s later\n{idle.closing_summary()}"
        )
    assert {held.status for held in refused.held} == {503}
    assert max(held.held_s or 0.0 for held in refused.held) < 1.0
    assert b"retry-after: 1\r\n" in refused.held[0].answer
    assert answered_at is not None, f"the normal client was not answered within {DEADLINE_S + SLACK_S} s"
    assert predicted.status_code == 200, predicted.text
    assert idle_closed, idle.closing_summary()
    assert {held.status for held in idle.held} == {408}
