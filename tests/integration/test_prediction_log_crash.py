"""``kill -9`` of the inference service loses no answered forecast and logs none twice.

`btcmlops serve` runs as a real process on MariaDB, reached through a TCP proxy the test can cut. It
answers forecasts with the store up and is killed with SIGKILL at once (before its next flush), then
again after answering through a store outage; then it gets SIGTERM during an outage, whose graceful
stop cannot write and leaves the files. Each restart replays the write-ahead files the process before
left. Every answered forecast (a distinct hour each) must be in the log exactly once.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from btcmlops.registry import CHAMPION, ModelRegistry
from btcmlops.replay import ReplayResult
from btcmlops.settings import Settings
from btcmlops.store import PriceStore
from factories import ReplayOf
from services import CliProcess, free_port, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.mariadb]

PER_PHASE = 250
"""Forecasts asked per kill -9, one distinct hour each."""
PER_TERM = 100
"""Forecasts asked before the SIGTERM with the store cut."""


class TcpProxy:
    """Forwards a local port to the database; ``stop`` cuts every connection and refuses new ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.port = free_port()
        self._target = target
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, []
        if listener is not None:  # shutdown wakes the accept blocked on it (a bare close would not)
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by stop()
                return
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                cut = self._listener is not listener
                if not cut:
                    self._sockets += [client, upstream]
            if cut:  # accepted as stop() ran
                client.close()
                upstream.close()
                return
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    @staticmethod
    def _pump(one: socket.socket, other: socket.socket) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(one, selectors.EVENT_READ, other)
            selector.register(other, selectors.EVENT_READ, one)
            try:
                while True:
                    for key, _ in selector.select(timeout=1):
                        data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                        if not data:
                            return
                        key.data.sendall(data)
            except (OSError, ValueError):  # cut by stop()
                return
            finally:
                one.close()
                other.close()


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory, replay_of: ReplayOf) -> ReplayResult:
    """Jan-Mar 2021 with v1 (trained on Jan-Feb) the champion: March is out of its sample.

    (An in-sample answer reads the log for ``served_live_by``, which a store outage would fail.)
    """
    result = replay_of(tmp_path_factory.mktemp("crash"), "2021-01-01", "2021-03-31 23:00")
    settings = Settings()
    registry = ModelRegistry(
        result.tracking_uri, settings.mlflow.experiment, settings.mlflow.registered_model, create=False
    )
    registry.set_alias(CHAMPION, 1)
    return result


@pytest.fixture
def database(mariadb_url_factory: Callable[[], str]) -> str:
    return mariadb_url_factory()


@pytest.fixture
def proxy(database: str) -> Iterator[TcpProxy]:
    url = make_url(database)
    proxied = TcpProxy((url.host or "127.0.0.1", url.port or 3306))
    proxied.start()
    yield proxied
    proxied.stop()


def _proxied_store(replay: ReplayResult, url: str, proxy: TcpProxy) -> tuple[PriceStore, str]:
    """The replay's candles in a fresh MariaDB database; the store read directly, and the URL via proxy."""
    store = PriceStore(url)
    store.migrate()
    source = PriceStore(f"sqlite:///{replay.out_dir / 'prices.db'}")
    store.upsert_candles(source.read_candles())
    source.dispose()
    proxied = make_url(url).set(host="127.0.0.1", port=proxy.port)
    return store, proxied.render_as_string(hide_password=False)


def _metric(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


def _ask(url: str, hours: list[str]) -> list[str]:
    """Ask one forecast per hour; return the hours answered with 200 (each must be logged)."""
    answered = []
    with httpx.Client(base_url=url, timeout=10) as client:
        for hour in hours:
            response = client.post("/predict", json={"timestamp": hour})
            assert response.status_code == 200, response.text
            assert not response.json()["in_sample"]
            answered.append(hour)
    return answered


def test_kill_9_with_the_store_up_and_down_and_sigterm_during_an_outage_lose_and_repeat_nothing(
    replay: ReplayResult, database: str, proxy: TcpProxy, tmp_path: Path
) -> None:
    store, proxied_url = _proxied_store(replay, database, proxy)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "BTCMLOPS_HOME": str(tmp_path / "home"),
        "BTCMLOPS_STORE__URL": proxied_url,
        "BTCMLOPS_MLFLOW__TRACKING_URI": replay.tracking_uri,
        "BTCMLOPS_SERVE__POLL_INTERVAL_S": "0.5",
        "BTCMLOPS_SERVE__MAX_BACKOFF_S": "1",
    }
    wal_root = tmp_path / "home" / "serve" / "prediction-log"
    hours = [f"2021-03-{day:02d}T{hour:02d}:00:00Z" for day in range(2, 28) for hour in range(24)]
    services: list[CliProcess] = []

    def start() -> CliProcess:
        service = CliProcess(
            f"serve-{len(services)}", ["serve", "--port", str(port)], env, tmp_path, forked=True
        )
        services.append(service.start())
        service.wait_for_http(f"{url}/readyz", timeout_s=120)
        return service

    def kill_9(service: CliProcess) -> None:
        assert service.process is not None
        os.killpg(service.process.pid, signal.SIGKILL)
        service.process.wait()
        service.process = None

    def logged_after_restart(expected: int) -> Counter[str]:
        def settled() -> bool:
            return _metric(url, "btcmlops_prediction_log_backlog") == 0 and (
                len(store.read_predictions(limit=100_000)) >= expected
            )

        wait_until(settled, timeout_s=60, what="the replayed log", on_timeout=lambda: services[-1].log_tail())
        return Counter(f"{row.timestamp:%Y-%m-%dT%H:%M:%SZ}" for row in store.read_predictions(limit=100_000))

    try:
        # 1. The store up: answer, then die before the next flush.
        service = start()
        up = _ask(url, hours[:PER_PHASE])
        kill_9(service)
        pending_at_kill_up = PER_PHASE - len(store.read_predictions(limit=100_000))
        service = start()
        replayed_up = _metric(url, "btcmlops_prediction_log_replayed_total")
        logged = logged_after_restart(len(up))
        lost_up = sum(1 for hour in up if logged[hour] == 0)
        repeated_up = sum(count - 1 for count in logged.values() if count > 1)

        # 2. The store cut: answer from memory, the log waits in the file; die; the store comes back.
        proxy.stop()
        half = PER_PHASE + PER_PHASE // 2
        during = _ask(url, hours[PER_PHASE:half])
        time.sleep(2.5)  # flushes fail and retry: one batch sealed in its file, the rest in the open one
        during += _ask(url, hours[half : 2 * PER_PHASE])
        wait_until(
            lambda: (
                _metric(url, "btcmlops_prediction_log_wal_bytes") > 0
                and _metric(url, "btcmlops_prediction_log_backlog") >= len(during)
            ),
            timeout_s=10,
            what="the backlog during the outage",
            on_timeout=lambda: httpx.get(f"{url}/metrics").text[-1500:] + service.log_tail(),
        )
        kill_9(service)
        wal_files = list(wal_root.rglob("*.wal"))
        proxy.start()
        service = start()
        replayed_out = _metric(url, "btcmlops_prediction_log_replayed_total")
        logged = logged_after_restart(len(up) + len(during))
        lost_out = sum(1 for hour in during if logged[hour] == 0)
        repeated_out = sum(count - 1 for count in logged.values() if count > 1) - repeated_up

        # 3. SIGTERM with the store cut: the graceful stop cannot write the log, so it leaves the files.
        proxy.stop()
        terminated = _ask(url, hours[2 * PER_PHASE : 2 * PER_PHASE + PER_TERM])
        service.stop()
        kept = sum(len(path.read_bytes().splitlines()) for path in wal_root.rglob("*.wal"))
        proxy.start()
        service = start()
        replayed_term = _metric(url, "btcmlops_prediction_log_replayed_total")
        logged = logged_after_restart(len(up) + len(during) + len(terminated))
        lost_term = sum(1 for hour in terminated if logged[hour] == 0)
        repeated_all = sum(count - 1 for count in logged.values() if count > 1)
        repeated_term = repeated_all - repeated_up - repeated_out
        strangers = set(logged) - set(up) - set(during) - set(terminated)
        service.stop()  # the store up: everything written, no file left
        left = list(wal_root.rglob("*.wal"))
    finally:
        for service in services:
            service.stop()
        store.dispose()

    print(
        f"\nkill -9, store up: {len(up)} answered, {pending_at_kill_up} not yet in the store at the kill, "
        f"{replayed_up:.0f} replayed, lost {lost_up}, repeated {repeated_up}"
        f"\nkill -9, store down: {len(during)} answered, {len(wal_files)} write-ahead file(s) left, "
        f"{replayed_out:.0f} replayed, lost {lost_out}, repeated {repeated_out}"
        f"\nSIGTERM, store down: {len(terminated)} answered, {kept} rows left in the files, "
        f"{replayed_term:.0f} replayed, lost {lost_term}, repeated {repeated_term}"
    )
    assert (lost_up, repeated_up, lost_out, repeated_out, lost_term, repeated_all) == (0, 0, 0, 0, 0, 0)
    assert strangers == set()
    assert replayed_out >= len(during)
    assert kept >= len(terminated)
    assert replayed_term >= len(terminated)
    assert left == []  # a clean stop with the store up leaves no file
