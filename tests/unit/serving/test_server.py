"""The service's HTTP server bounds slow and idle clients (``btcmlops.serving.server``).

A real uvicorn server (the config ``btcmlops serve`` uses, from ``server_config``) runs on 127.0.0.1 in a
thread with a small ASGI app, and real sockets play the clients: one that says nothing, one that sends
its headers or its body a byte at a time, one that keeps its connection open after an answer, one too
many. The deadlines are short here (about a second) so the tests take seconds.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import resource
import socket
import time
from collections.abc import Iterator

import pytest
import uvicorn
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from btcmlops.serving.server import (
    BoundedHttpToolsProtocol,
    ConnectionLimits,
    fit_open_files,
    protocol_class,
    server_config,
)
from btcmlops.settings import ServeSettings
from services import free_port, uvicorn_in_thread

# One xdist worker (make test) runs the module: the module's server is started once.
pytestmark = pytest.mark.xdist_group("server")

HEADER_TIMEOUT_S = 1.5
BODY_TIMEOUT_S = 1.0
KEEP_ALIVE_S = 1
MAX_CONNECTIONS = 8
SLACK_S = 1.0
"""A deadline fires within this of its time (the event loop's timer, a busy two-core machine)."""
APP_WORK_S = 2.0
"""How long ``/slow`` works before answering: longer than both deadlines."""
SETTINGS = ServeSettings(
    header_timeout_s=HEADER_TIMEOUT_S,
    body_timeout_s=BODY_TIMEOUT_S,
    keep_alive_timeout_s=KEEP_ALIVE_S,
    max_connections=MAX_CONNECTIONS,
)


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    """``/early`` answers before reading the body; ``/slow`` works ``APP_WORK_S``; else: the body's size."""
    if scope["type"] != "http":
        return
    size = 0
    if scope["path"] != "/early":
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
    if scope["path"] == "/slow":
        await asyncio.sleep(APP_WORK_S)
    body = str(size).encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]}
    )
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    """The bounded server (as ``btcmlops serve`` configures it) with ``_app``, on a free port."""
    chosen = free_port()
    config = server_config(_app, SETTINGS, host="127.0.0.1", port=chosen, max_connections=MAX_CONNECTIONS)
    config.log_level = logging.WARNING
    with uvicorn_in_thread(config):
        yield chosen


def _connect(port: int) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port), timeout=5)
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def _until_closed(connection: socket.socket, within_s: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and when (seconds from now)."""
    started = time.monotonic()
    received = b""
    connection.settimeout(within_s)
    while chunk := connection.recv(65536):
        received += chunk
    return received, time.monotonic() - started


def _dribble(connection: socket.socket, data: bytes, every_s: float) -> float:
    """Send ``data`` a byte every ``every_s`` until the server closes the connection; when it did."""
    started = time.monotonic()
    try:
        for byte in data:
            connection.send(bytes([byte]))
            time.sleep(every_s)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return time.monotonic() - started


def _ask(connection: socket.socket, request: bytes) -> bytes:
    """Send a request, return its answer (status line and headers, and a body of ``content-length``)."""
    connection.sendall(request)
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = connection.recv(65536)
        assert chunk, f"closed without an answer: {answer!r}"
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lengths = [line[15:] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    length = int(lengths[0])
    while len(body) < length:
        body += connection.recv(65536)
    return answer


GET = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"
SLOW_HEADERS = b"GET / HTTP/1.1\r\nHost: test\r\nX-Padding: " + b"a" * 200 + b"\r\n\r\n"
"""Headers that take 11 s at a byte every 50 ms."""


def test_a_connection_that_sends_nothing_gets_408_at_the_header_deadline(port: int) -> None:
    with _connect(port) as idle:
        answer, after_s = _until_closed(idle, HEADER_TIMEOUT_S + SLACK_S + 5)
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer
    assert b"connection: close" in answer
    assert b"its headers did not arrive within 1.5 s (BTCMLOPS_SERVE__HEADER_TIMEOUT_S)" in answer
    assert HEADER_TIMEOUT_S - 0.1 <= after_s <= HEADER_TIMEOUT_S + SLACK_S


def test_headers_sent_a_byte_at_a_time_are_cut_off_at_the_deadline_though_bytes_keep_coming(
    port: int,
) -> None:
    with _connect(port) as slow:
        closed_after_s = _dribble(slow, SLOW_HEADERS, every_s=0.05)
        answer, _ = _until_closed(slow, 5)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert closed_after_s <= HEADER_TIMEOUT_S + SLACK_S


def test_a_body_sent_a_byte_at_a_time_is_cut_off_at_the_body_deadline(port: int) -> None:
    with _connect(port) as slow:
        slow.sendall(b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 200\r\n\r\n")
        closed_after_s = _dribble(slow, b"x" * 200, every_s=0.05)
        answer, _ = _until_closed(slow, 5)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"its body did not arrive within 1 s (BTCMLOPS_SERVE__BODY_TIMEOUT_S)" in answer
    assert closed_after_s <= BODY_TIMEOUT_S + SLACK_S


def test_a_kept_alive_connection_serves_requests_for_longer_than_both_deadlines(port: int) -> None:
    """The deadlines bound each request's arrival, not the connection's life or the app's work."""
    with _connect(port) as client:
        started = time.monotonic()
        while time.monotonic() - started < HEADER_TIMEOUT_S + 0.3:
            assert _ask(client, GET).startswith(b"HTTP/1.1 200")
            posted = _ask(client, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
            assert posted.endswith(b"\r\n3")
            time.sleep(0.2)
        slow = _ask(client, b"POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nab")
        assert slow.startswith(b"HTTP/1.1 200")
        assert slow.endswith(b"\r\n2")


def test_a_silent_kept_alive_connection_is_closed_by_the_keep_alive_timeout(port: int) -> None:
    with _connect(port) as client:
        assert _ask(client, GET).startswith(b"HTTP/1.1 200")
        answer, after_s = _until_closed(client, KEEP_ALIVE_S + SLACK_S + 5)
    assert answer == b""  # closed quietly: the client had no request under way
    assert KEEP_ALIVE_S - 0.1 <= after_s <= KEEP_ALIVE_S + SLACK_S


def test_the_next_request_dribbled_on_a_kept_alive_connection_gets_408(port: int) -> None:
    with _connect(port) as client:
        assert _ask(client, GET).startswith(b"HTTP/1.1 200")
        closed_after_s = _dribble(client, SLOW_HEADERS, every_s=0.05)
        answer, _ = _until_closed(client, 5)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert closed_after_s <= HEADER_TIMEOUT_S + SLACK_S


def test_an_app_that_answered_before_the_body_came_sends_no_second_answer_at_the_body_deadline(
    port: int,
) -> None:
    with _connect(port) as client:
        client.sendall(b"POST /early HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\nx")
        answer, after_s = _until_closed(client, BODY_TIMEOUT_S + SLACK_S + 5)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert answer.count(b"HTTP/1.1") == 1
    assert after_s <= BODY_TIMEOUT_S + SLACK_S


def test_a_connection_beyond_the_cap_gets_503_at_once_and_a_freed_slot_serves_again(port: int) -> None:
    held = [_connect(port) for _ in range(MAX_CONNECTIONS)]
    try:
        for connection in held:  # every one accepted and counted before the next is tried
            assert _ask(connection, GET).startswith(b"HTTP/1.1 200")
        with _connect(port) as refused:
            answer, after_s = _until_closed(refused, 5)
        assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), answer
        assert b"retry-after: 1\r\n" in answer
        assert b"connection: close\r\n" in answer
        assert b"too many connections (8, BTCMLOPS_SERVE__MAX_CONNECTIONS)" in answer
        assert after_s < 0.5
        held.pop().close()
        deadline = time.monotonic() + 5
        while True:  # the server sees the close within a loop turn or two
            with _connect(port) as client:
                try:
                    if _ask(client, GET).startswith(b"HTTP/1.1 200"):
                        break
                except (AssertionError, ConnectionResetError):
                    pass
            assert time.monotonic() < deadline, "a freed slot was never given to a new client"
            time.sleep(0.05)
    finally:
        for connection in held:
            connection.close()


def test_a_websocket_upgrade_is_not_taken_out_of_the_bounds(port: int) -> None:
    """uvicorn hands an upgraded connection to its WebSocket protocol, outside these deadlines and the
    connection count; the service has no WebSocket route, so the server is configured without one."""
    upgrade = (
        b"GET / HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    with _connect(port) as client:
        assert not _ask(client, upgrade).startswith(b"HTTP/1.1 101")


def test_the_uvicorn_internals_the_protocol_relies_on_are_still_there() -> None:
    """uvicorn's protocol classes are private API: this fails where an upgrade changed what
    ``BoundedHttpToolsProtocol`` extends (then re-read httptools_impl.py before adjusting it)."""
    for name in ("connection_made", "connection_lost", "on_headers_complete", "on_message_complete"):
        assert name in vars(HttpToolsProtocol), name
    assert list(inspect.signature(HttpToolsProtocol.on_response_complete).parameters) == ["self"]
    # The cycle calls back the protocol's (overridden) on_response_complete when an answer is sent.
    assert "on_response=self.on_response_complete" in inspect.getsource(HttpToolsProtocol.on_headers_complete)
    assert "self.connections.add(self)" in inspect.getsource(HttpToolsProtocol.connection_made)
    assert "call_later(" in inspect.getsource(HttpToolsProtocol.on_response_complete)  # keep-alive
    cycle_init = inspect.getsource(RequestResponseCycle.__init__)
    assert "self.response_started = False" in cycle_init
    assert "self.response_complete = False" in cycle_init
    state = ServerState()
    config = uvicorn.Config(_app, lifespan="off")
    config.load()
    loop = asyncio.new_event_loop()
    try:
        limits = ConnectionLimits(header_timeout_s=1, body_timeout_s=1, max_connections=1)
        protocol = protocol_class(limits)(config=config, server_state=state, app_state={}, _loop=loop)
    finally:
        loop.close()
    assert protocol.connections is state.connections
    assert protocol.loop is loop
    assert protocol.cycle is None
    assert len(protocol.pipeline) == 0
    assert isinstance(protocol, BoundedHttpToolsProtocol)
    assert protocol.limits == limits


def test_serve_settings_have_bounded_defaults_and_refuse_nonsense() -> None:
    defaults = ServeSettings()
    assert (defaults.header_timeout_s, defaults.body_timeout_s) == (10, 30)
    assert (defaults.keep_alive_timeout_s, defaults.max_connections) == (5, 4096)
    for wrong in ({"header_timeout_s": 0}, {"body_timeout_s": -1}, {"max_connections": 0}):
        with pytest.raises(ValidationError):
            ServeSettings(**wrong)
    with pytest.raises(ValidationError, match="lower BTCMLOPS_SERVE__KEEP_ALIVE_TIMEOUT_S or raise"):
        ServeSettings(keep_alive_timeout_s=20, header_timeout_s=10)


def test_the_config_carries_the_settings_to_uvicorn() -> None:
    config = server_config(_app, SETTINGS, host="127.0.0.1", port=1, max_connections=3)
    assert config.timeout_keep_alive == KEEP_ALIVE_S
    assert config.ws == "none"
    assert config.limit_concurrency is None  # the cap is the protocol's: uvicorn's refuses requests only
    assert isinstance(config.http, type)
    assert issubclass(config.http, BoundedHttpToolsProtocol)
    assert config.http.limits == ConnectionLimits(HEADER_TIMEOUT_S, BODY_TIMEOUT_S, 3)


@pytest.fixture
def open_files_limit() -> Iterator[tuple[int, int]]:
    """This process's open-file limits, put back after the test."""
    limits = resource.getrlimit(resource.RLIMIT_NOFILE)
    yield limits
    resource.setrlimit(resource.RLIMIT_NOFILE, limits)


def test_the_soft_open_file_limit_is_raised_so_the_cap_fits(open_files_limit: tuple[int, int]) -> None:
    _, hard = open_files_limit
    if hard == resource.RLIM_INFINITY or hard < 1000:
        pytest.skip(f"hard open-file limit {hard}: the test needs a finite one of 1000 or more")
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard))
    assert fit_open_files(600, headroom=100) == 600
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (700, hard)


def test_a_cap_above_the_hard_limit_is_lowered_with_a_warning_naming_both(
    open_files_limit: tuple[int, int], caplog: pytest.LogCaptureFixture
) -> None:
    _, hard = open_files_limit
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no hard open-file limit: any cap fits")
    with caplog.at_level(logging.WARNING, logger="btcmlops.serving.server"):
        fitted = fit_open_files(hard + 5000, headroom=200)
    assert fitted == hard - 200
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard
    assert f"MAX_CONNECTIONS={hard + 5000} does not fit under the open-file limit {hard}" in caplog.text
    assert f"capping connections at {hard - 200}" in caplog.text
