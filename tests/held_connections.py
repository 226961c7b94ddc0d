"""Clients that hold a service's connections open, and one normal client beside them (issue 21).

``HeldConnections`` opens real sockets of three kinds: idle (connect, then silence), slow headers (a
request's headers a byte every ``every_s``) and slow bodies (the headers at once, then the body a byte
every ``every_s``). One thread sends the bytes and watches every socket with epoll, recording when the
server closed it and what it said first. ``ask_beside`` is the normal client: ``GET /healthz`` and
``POST /predict`` back to back on one kept-alive connection, every answer timed.

Used by ``tests/integration/test_slow_clients.py`` and ``bench/slow_clients.py``.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

import httpx

Kind = Literal["idle", "slow headers", "slow body"]
SLOW_HEADERS = b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Padding: " + b"a" * 1000 + b"\r\n\r\n"
"""Headers that take over 17 minutes at a byte a second."""
SLOW_BODY = b'{"timestamp": "2021-03-15T05:00:00Z", "pad": "' + b"a" * 952 + b'"}'
"""A body of 1,000 bytes, sent a byte at a time after its headers."""
SLOW_BODY_HEADERS = (
    b"POST /predict HTTP/1.1\r\nHost: slow\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n" % len(SLOW_BODY)
)


@dataclass
class Held:
    """One held connection: what it still has to send, and how the server ended it."""

    kind: Kind
    connection: socket.socket
    opened_at: float
    to_send: bytes
    closed_at: float | None = None
    answer: bytes = b""
    reset: bool = False
    """The server reset the connection (no orderly close)."""

    @property
    def held_s(self) -> float | None:
        """How long the server kept it open (None: still open)."""
        return None if self.closed_at is None else self.closed_at - self.opened_at

    @property
    def status(self) -> int | None:
        """The status of the server's answer (None: closed without one)."""
        if not self.answer.startswith(b"HTTP/1.1 "):
            return None
        return int(self.answer[9:12])


class HeldConnections:
    """``idle`` + ``slow_headers`` + ``slow_bodies`` connections to ``host:port``, held until the server
    closes them or the context ends."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        idle: int = 0,
        slow_headers: int = 0,
        slow_bodies: int = 0,
        every_s: float = 1.0,
    ) -> None:
        self._address = (host, port)
        self._counts: dict[Kind, int] = {"idle": idle, "slow headers": slow_headers, "slow body": slow_bodies}
        self._every_s = every_s
        self.held: list[Held] = []
        self.opened_in_s = 0.0
        """How long opening them all took."""
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> HeldConnections:
        started = time.monotonic()
        for kind, count in self._counts.items():
            for _ in range(count):
                connection = socket.create_connection(self._address, timeout=10)
                connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                first, rest = {
                    "idle": (b"", b""),
                    "slow headers": (SLOW_HEADERS[:1], SLOW_HEADERS[1:]),
                    "slow body": (SLOW_BODY_HEADERS + SLOW_BODY[:1], SLOW_BODY[1:]),
                }[kind]
                connection.sendall(first)
                connection.setblocking(False)
                held = Held(kind, connection, time.monotonic(), rest)
                self.held.append(held)
                self._selector.register(connection, selectors.EVENT_READ, held)
        self.opened_in_s = time.monotonic() - started
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for held in self.held:
            held.connection.close()
        self._selector.close()

    def _run(self) -> None:
        next_byte_at = time.monotonic() + self._every_s
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=max(0.0, min(0.1, next_byte_at - time.monotonic()))):
                self._receive(key.data)
            if time.monotonic() >= next_byte_at:
                next_byte_at += self._every_s
                for held in self.held:
                    if held.closed_at is None and held.to_send:
                        self._send_byte(held)

    def _receive(self, held: Held) -> None:
        try:
            chunk = held.connection.recv(65536)
        except BlockingIOError:
            return
        except ConnectionResetError:
            chunk, held.reset = b"", True
        if chunk:
            held.answer += chunk
            return
        held.closed_at = time.monotonic()
        self._selector.unregister(held.connection)
        held.connection.close()

    def _send_byte(self, held: Held) -> None:
        try:
            sent = held.connection.send(held.to_send[:1])
        except BlockingIOError:
            return
        except (BrokenPipeError, ConnectionResetError):
            held.to_send = b""  # the server closed it: the reader sees the end
            return
        held.to_send = held.to_send[sent:]

    def open_count(self, kind: Kind | None = None) -> int:
        """How many the server has not closed yet."""
        return sum(1 for held in self.held if held.closed_at is None and kind in (None, held.kind))

    def wait_closed(self, timeout_s: float) -> bool:
        """Until the server closed every one (True), or ``timeout_s`` passed (False)."""
        deadline = time.monotonic() + timeout_s
        while self.open_count():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def closing_summary(self) -> str:
        """For each kind: how many, how long the server held them (min-max), and how it ended them."""
        lines = []
        for kind in self._counts:
            ones = [held for held in self.held if held.kind == kind]
            if not ones:
                continue
            held_s = [held.held_s for held in ones if held.held_s is not None]
            endings: dict[str, int] = {}
            for held in ones:
                ending = (
                    "open"
                    if held.closed_at is None
                    else "reset"
                    if held.reset
                    else str(held.status or "closed")
                )
                endings[ending] = endings.get(ending, 0) + 1
            span = f"{min(held_s):.2f}-{max(held_s):.2f} s" if held_s else "-"
            lines.append(f"{len(ones)} {kind}: closed by the server after {span}; {endings}")
        return "\n".join(lines)


@dataclass
class Asked:
    """The normal client's answers: (path, status, seconds) each; status 0 is a transport error."""

    answers: list[tuple[str, int, float]] = field(default_factory=list)

    def seconds(self, path: str) -> list[float]:
        return [seconds for asked, _, seconds in self.answers if asked == path]

    def failed(self) -> list[tuple[str, int, float]]:
        return [answer for answer in self.answers if answer[1] != 200]

    def figures(self, path: str) -> str:
        """``path``'s count, p50 and p95 in milliseconds."""
        seconds = self.seconds(path)
        if len(seconds) < 2:
            return f"{path}: {len(seconds)} answers"
        cuts = statistics.quantiles(seconds, n=100, method="inclusive")
        return f"{path}: {len(seconds)} answers, p50 {cuts[49] * 1e3:.1f} ms, p95 {cuts[94] * 1e3:.1f} ms"


def ask_beside(url: str, seconds: float, hours: list[str], *, timeout_s: float = 10.0) -> Asked:
    """``GET /healthz`` and ``POST /predict`` (cycling over ``hours``) back to back for ``seconds``."""
    asked = Asked()
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=timeout_s) as client:
        count = 0
        while time.monotonic() < deadline:
            for path in ("/healthz", "/predict"):
                started = time.monotonic()
                status = 0
                with contextlib.suppress(httpx.HTTPError):
                    if path == "/healthz":
                        status = client.get(path).status_code
                    else:
                        status = client.post(path, json={"timestamp": hours[count % len(hours)]}).status_code
                asked.answers.append((path, status, time.monotonic() - started))
            count += 1
    return asked
