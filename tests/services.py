"""Real services for tests: a throwaway MariaDB database, free ports, bounded readiness polls."""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import uvicorn
from browser import CHROMIUM, launch_chromium  # scripts/browser.py (scripts is on pytest's path)
from playwright.sync_api import Browser
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from forked import ForkedProcess

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from btcmlops.replay import ReplayResult

MYSQL_SERVER_URL = os.environ.get("BTCMLOPS_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")


def mariadb_database() -> Iterator[str]:
    """Create a uniquely named database on the MariaDB server, yield its URL, drop it afterwards.

    An unreachable server fails the run in CI (where it must be there) and skips elsewhere.
    """
    server = create_engine(MYSQL_SERVER_URL, pool_pre_ping=True)
    name = f"btcmlops_test_{uuid.uuid4().hex[:12]}"
    try:
        with server.connect() as connection:
            connection.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    except OperationalError as error:
        server.dispose()
        message = f"MariaDB not reachable at {MYSQL_SERVER_URL}: {error.orig}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        url = make_url(MYSQL_SERVER_URL).set(database=name, query={"charset": "utf8mb4"})
        yield url.render_as_string(hide_password=False)
    finally:
        with server.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        server.dispose()


PORTS_FROM = 20_000
"""Test servers listen on ports below Linux's ephemeral range (32768-60999 by default), so no client
socket of this or another process is given one of them in the meantime (a server stopped and started
again on its port finds it free)."""
PORTS_PER_WORKER = 1_000
"""Each pytest-xdist worker (gw0, gw1, ...) takes its ports from its own block: no two workers pick the
same port between the probe and the server's bind."""
_next_port = itertools.count(random.randrange(PORTS_PER_WORKER))  # two sessions side by side: apart


def _port_block() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    blocks = (32_768 - PORTS_FROM) // PORTS_PER_WORKER
    return PORTS_FROM + (int(worker) if worker.isdigit() else 0) % blocks * PORTS_PER_WORKER


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (or lingers on) right now, from this worker's
    block: the next one in turn that binds."""
    block = _port_block()
    for _ in range(PORTS_PER_WORKER):
        port = block + next(_next_port) % PORTS_PER_WORKER
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:  # in use, or in TIME_WAIT
                continue
            return port
    raise RuntimeError(f"no free port in {block}-{block + PORTS_PER_WORKER - 1}")


def wait_until(
    ready: Callable[[], bool],
    *,
    timeout_s: float,
    what: str,
    on_timeout: Callable[[], str],
    every_s: float = 0.25,
) -> None:
    """Poll ``ready`` every ``every_s`` until it is true, failing after ``timeout_s`` with
    ``on_timeout()``'s detail."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(every_s)
    pytest.fail(f"{what} not ready after {timeout_s:.0f} s:\n{on_timeout()}")


@contextlib.contextmanager
def uvicorn_in_thread(config: uvicorn.Config, timeout_s: float = 10) -> Iterator[uvicorn.Server]:
    """A real uvicorn server in a thread (httpx's way), waited for on its ``started`` flag, never a
    sleep; stopped at the end."""
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        assert thread.is_alive(), "uvicorn stopped before it started"
        time.sleep(0.01)
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=timeout_s)


Process = subprocess.Popen[bytes] | ForkedProcess
"""A started command: a fresh interpreter, or one forked from the preloaded fork server (``forked``)."""


def wait_for_http(
    url: str, process: Process, *, what: str, timeout_s: float, log_tail: Callable[[], str]
) -> None:
    """Wait until ``url`` answers 200, failing at once (with the log) if ``process`` exits first."""

    def answers() -> bool:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}:\n{log_tail()}")
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(answers, timeout_s=timeout_s, what=what, on_timeout=log_tail)


class CliProcess:
    """One ``btcmlops`` command in its own process (and process group), its output in a log file.

    ``forked``: forked from the worker's preloaded interpreter (``tests/forked.py``) instead of a fresh
    ``python``, for tests that need the process but not its imports.
    """

    def __init__(
        self, name: str, args: list[str], env: dict[str, str], log_dir: Path, *, forked: bool = False
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._command = [sys.executable, "-m", "btcmlops", *args]
        self._env = {**os.environ, **env}
        self._forked = forked
        self.process: Process | None = None

    def start(self) -> CliProcess:
        if self._forked:
            self.process = ForkedProcess(self._command, self._env, self.log_path)
            return self
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self._command, env=self._env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def wait_for_http(self, url: str, *, timeout_s: float) -> None:
        assert self.process is not None
        wait_for_http(url, self.process, what=self.name, timeout_s=timeout_s, log_tail=self.log_tail)

    def stop(self, timeout_s: float = 30) -> None:
        if self.process is not None:
            process, self.process = self.process, None
            stop_process_group(process, timeout_s)


def stop_process_group(process: Process, timeout_s: float) -> None:
    """SIGTERM the group (a command started with ``start_new_session`` and its children, such as the
    workers of an mlflow server), SIGKILL what outstays ``timeout_s``."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:  # the group is gone already
        process.wait()
        return
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def peak_rss_mb(pid: int) -> float:
    """The peak resident set size (VmHWM) of process ``pid`` so far, in MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"no VmHWM in /proc/{pid}/status")


def require_chromium() -> None:
    """Skip without Debian's Chromium, or fail when ``CI`` is "true" (CI installs it)."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium chromium-driver (make system-deps)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@contextlib.contextmanager
def chromium_browser() -> Iterator[Browser]:
    """Debian's Chromium started as ``scripts/browser.py`` starts it; missing: skip, or fail in CI."""
    from playwright.sync_api import sync_playwright

    require_chromium()
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A local TCP port that accepts connections and never says a word (a frozen database server)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.05)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        listener.close()


def idle_watch() -> dict[str, Any]:
    """Serve settings for an in-process app whose test waits on none of its watchers (it sends bad
    input, or generated requests): the watchers poll at the setting's default instead of every 0.05 s.
    Each round of the three watchers costs CPU (an idle app took a quarter of a core at 0.05 s, a
    twentieth at 0.5 s), and in-process it holds the GIL the test's own requests wait for."""
    from btcmlops.settings import ServeSettings

    return {"poll_interval_s": ServeSettings().poll_interval_s}


def wait_ready(client: TestClient, timeout_s: float = 30) -> None:
    """Until the in-process service answers ``/readyz`` 200 (a champion loaded)."""
    deadline = time.monotonic() + timeout_s
    while client.get("/readyz").status_code != 200:
        if time.monotonic() > deadline:
            pytest.fail(f"service not ready: {client.get('/model').text}")
        time.sleep(0.05)


@contextlib.contextmanager
def serving_replay(replay: ReplayResult, **settings_groups: Any) -> Iterator[TestClient]:
    """The inference service in-process (its lifespan runs) on a replay's own stores, ready.

    ``settings_groups`` are settings groups merged over the defaults here (``serve={"control_key": ...}``).
    """
    from fastapi.testclient import TestClient

    from btcmlops.serving import create_app
    from btcmlops.settings import Settings

    settings = Settings(
        home=replay.out_dir.parent,
        store={"url": f"sqlite:///{replay.out_dir / 'prices.db'}"},
        mlflow={"tracking_uri": replay.tracking_uri},
        serve={"poll_interval_s": 0.05, "log_flush_interval_s": 0.05, **settings_groups.pop("serve", {})},
        **settings_groups,
    )
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        yield client
