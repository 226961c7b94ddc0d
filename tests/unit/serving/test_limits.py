"""``BodyLimitMiddleware`` on its own: bytes counted as they arrive, the app never sees a long body.
``ReadGate`` on its own: few long reads at once, each answered within the store timeout."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import uvicorn
from starlette.types import Message, Receive, Scope, Send

from btcmlops.serving.errors import ApiError
from btcmlops.serving.limits import BodyLimitMiddleware, ReadGate
from btcmlops.serving.state import StoreUnavailableError
from btcmlops.settings import ServeSettings
from services import free_port, uvicorn_in_thread

# One xdist worker (make test) runs the module: the module's server is started once.
pytestmark = pytest.mark.xdist_group("limits")

LIMIT = 100


class _Echo:
    """An app that reads the whole body and answers its length; remembers whether it ran."""

    def __init__(self) -> None:
        self.called = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.called = True
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        answer = json.dumps({"length": len(body)}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": answer})


def _call(
    chunks: list[bytes], headers: list[tuple[bytes, bytes]] | None = None
) -> tuple[_Echo, list[Message], int]:
    """Send ``chunks`` as one request's body; return the app, what was sent back, chunks read."""
    app = _Echo()
    middleware = BodyLimitMiddleware(app, max_bytes=LIMIT)
    pending = [
        {"type": "http.request", "body": chunk, "more_body": number < len(chunks) - 1}
        for number, chunk in enumerate(chunks)
    ]
    read = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal read
        if read < len(pending):
            read += 1
            return pending[read - 1]
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "http", "method": "POST", "path": "/", "headers": headers or []}
    asyncio.run(middleware(scope, receive, send))
    return app, sent, read


def test_a_body_up_to_the_limit_reaches_the_app_whole() -> None:
    app, sent, _ = _call([b"a" * 60, b"b" * 40])
    assert app.called
    assert sent[0]["status"] == 200
    assert json.loads(sent[1]["body"]) == {"length": LIMIT}


def test_a_streamed_body_is_cut_off_at_the_limit_without_reading_the_rest() -> None:
    app, sent, read = _call([b"a" * 60, b"b" * 60, b"c" * 10_000, b"d" * 10_000])
    assert not app.called
    assert read == 2  # the third chunk is never read
    assert sent[0]["status"] == 413
    assert (b"connection", b"close") in sent[0]["headers"]
    detail = json.loads(sent[1]["body"])["detail"]
    assert f"sent more than {LIMIT} bytes; the limit is {LIMIT} bytes" in detail
    assert "BTCMLOPS_SERVE__MAX_BODY_BYTES" in detail


def test_a_declared_length_over_the_limit_is_refused_before_any_byte_is_read() -> None:
    app, sent, read = _call([b"a" * 500], headers=[(b"content-length", b"500")])
    assert not app.called
    assert read == 0
    assert sent[0]["status"] == 413
    assert "declares 500 bytes" in json.loads(sent[1]["body"])["detail"]


def test_a_client_gone_mid_body_gets_no_answer_and_the_app_does_not_run() -> None:
    app = _Echo()
    middleware = BodyLimitMiddleware(app, max_bytes=LIMIT)
    messages: list[Message] = [
        {"type": "http.request", "body": b"a", "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(middleware({"type": "http", "headers": []}, receive, send))
    assert not app.called
    assert sent == []


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    """The middleware in a real uvicorn server (h11): chunked bodies arrive as the client sends them."""
    port = free_port()
    config = uvicorn.Config(BodyLimitMiddleware(_Echo(), max_bytes=LIMIT), port=port, log_level="warning")
    with uvicorn_in_thread(config):
        yield port


def _chunked(port: int, chunks: list[bytes]) -> bytes:
    """POST ``chunks`` with Transfer-Encoding: chunked (no Content-Length); return the raw answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for chunk in chunks:
                connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            connection.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the client finished: that is the point
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
            if b"}" in answer:
                break
        return answer


def test_over_a_real_socket_a_chunked_body_over_the_limit_gets_413(server: int) -> None:
    answer = _chunked(server, [b"x" * 50] * 1000)  # 50 KB without a Content-Length
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"sent more than 100 bytes" in answer


def test_over_a_real_socket_a_chunked_body_under_the_limit_is_served(server: int) -> None:
    answer = _chunked(server, [b"x" * 30] * 3)
    assert answer.startswith(b"HTTP/1.1 200")
    assert b'{"length": 90}' in answer


def _on_thread(read: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
    """``read`` as the gate runs it: on a worker thread (as the service does with ``read_workers=0``)."""
    return lambda: asyncio.to_thread(read)


class _Asker:
    """The part of a request the gate looks at: whether its client is still there."""

    def __init__(self, gone: bool = False) -> None:
        self.gone = gone

    async def is_disconnected(self) -> bool:
        return self.gone


def test_the_gate_lets_few_reads_run_and_answers_503_to_one_that_waited_too_long() -> None:
    gate = ReadGate(ServeSettings(max_concurrent_reads=1, read_wait_s=0.2))
    release = threading.Event()

    async def scenario() -> None:
        slow = asyncio.create_task(gate.run(_Asker(), _on_thread(lambda: release.wait(5))))
        await asyncio.sleep(0.05)
        with pytest.raises(ApiError) as refused:
            await gate.run(_Asker(), _on_thread(lambda: "never"))  # type: ignore[arg-type]
        assert refused.value.status == 503
        assert refused.value.headers == {"Retry-After": "1"}
        release.set()
        assert await slow is True
        with pytest.raises(ApiError) as gone:  # a read whose asker hung up does no work
            await gate.run(_Asker(gone=True), _on_thread(lambda: pytest.fail("nobody")))  # type: ignore[arg-type]
        assert gone.value.status == 499
        assert await gate.run(_Asker(), _on_thread(lambda: "read")) == "read"  # given back each time

    asyncio.run(scenario())


def test_a_read_the_store_does_not_answer_is_503_within_its_timeout_and_keeps_its_slot() -> None:
    """A frozen store: the asker hears in ``long_read_timeout_s``; the thread still waiting on the driver
    keeps its slot until it ends, so a silent store never holds more threads than there are slots."""
    gate = ReadGate(ServeSettings(max_concurrent_reads=1, read_wait_s=0.1, long_read_timeout_s=0.2))
    release = threading.Event()

    def silent() -> None:
        release.wait(5)
        raise ConnectionError("the driver's read timeout")  # dropped: the asker was answered already

    async def scenario() -> None:
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match=r"no answer within 0\.2 s"):
            await gate.run(_Asker(), _on_thread(silent))  # type: ignore[arg-type]
        assert time.monotonic() - started < 1.0
        with pytest.raises(ApiError) as busy:  # the silent read still holds the only slot
            await gate.run(_Asker(), _on_thread(lambda: "never"))  # type: ignore[arg-type]
        assert busy.value.status == 503
        release.set()
        await asyncio.sleep(0.1)
        assert await gate.run(_Asker(), _on_thread(lambda: "read")) == "read"  # given back: the thread ended

    asyncio.run(scenario())


def test_a_slow_page_is_answered_past_the_store_timeout_within_the_long_read_timeout() -> None:
    """A page that takes longer than ``store_timeout_s`` (a big page on a busy machine) is no outage."""
    gate = ReadGate(ServeSettings(store_timeout_s=0.1, long_read_timeout_s=2.0))

    def slow() -> str:
        time.sleep(0.4)
        return "page"

    assert asyncio.run(gate.run(_Asker(), _on_thread(slow))) == "page"  # type: ignore[arg-type]


def test_what_a_read_sets_up_first_takes_its_slot_but_not_its_time() -> None:
    """The read workers' start (seconds on a busy machine) is no slow store: it is not timed."""
    gate = ReadGate(ServeSettings(max_concurrent_reads=1, read_wait_s=0.1, long_read_timeout_s=0.2))

    async def scenario() -> None:
        setting_up = asyncio.create_task(
            gate.run(_Asker(), _on_thread(lambda: "page"), lambda: asyncio.sleep(0.4))  # type: ignore[arg-type]
        )
        await asyncio.sleep(0.05)
        with pytest.raises(ApiError) as busy:  # the read setting up holds the slot
            await gate.run(_Asker(), _on_thread(lambda: "never"))  # type: ignore[arg-type]
        assert busy.value.status == 503
        assert await setting_up == "page"

    asyncio.run(scenario())
