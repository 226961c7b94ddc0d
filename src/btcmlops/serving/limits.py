"""What bounds the cost of requests: the body size, and how many long reads run at once.

``BodyLimitMiddleware``: no request body longer than a limit reaches the app (413 instead). Pure ASGI:
it counts the bytes as they arrive, so a body sent without ``Content-Length`` (chunked) is cut off at
the limit as surely as one that declares its length, and nothing past the limit is read or held. The
app then parses and validates at most ``max_bytes``: the cost of one request is bounded.

``ReadGate``: at most ``max_concurrent_reads`` long reads (``/candles``, ``/predictions``) at once, each
answered within ``long_read_timeout_s`` (503 naming the store past it). That bound is its own, longer than
``store_timeout_s``: a page of 10,000 rows takes seconds on a busy machine, and a slow page is no outage.
Where a page is built (a read worker's process, ``serving.read_workers``) is the caller's to say.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from btcmlops.serving.errors import RETRY_AFTER, ApiError
from btcmlops.serving.state import StoreUnavailableError
from btcmlops.settings import ServeSettings


class BodyLimitMiddleware:
    """Answer 413 to a request whose body is longer than ``max_bytes``, before the app runs."""

    def __init__(self, app: ASGIApp, max_bytes: int, setting: str = "BTCMLOPS_SERVE__MAX_BODY_BYTES") -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.setting = setting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send, f"declares {declared} bytes")
            return
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nobody to answer
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send, f"sent more than {self.max_bytes} bytes")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _refuse(self, send: Send, what: str) -> None:
        detail = f"request body too large: it {what}; the limit is {self.max_bytes} bytes ({self.setting})"
        body = json.dumps({"detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),  # the rest of the body is never read
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server (h11, httptools) refuses such a request before it gets here
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body read already, then waits on the client as usual."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class ReadGate:
    """At most ``settings.max_concurrent_reads`` long reads at once; the others wait, then 503."""

    def __init__(self, settings: ServeSettings) -> None:
        self._slots = asyncio.Semaphore(settings.max_concurrent_reads)
        self._wait_s = settings.read_wait_s
        self._timeout_s = settings.long_read_timeout_s
        self.max_rows = settings.max_read_rows

    async def run(
        self,
        request: Request,
        read: Callable[[], Awaitable[Any]],
        prepare: Callable[[], Awaitable[None]] | None = None,
    ) -> Any:
        """``await read()``, once a slot is free; its result within ``long_read_timeout_s``.

        ``prepare`` is awaited first, in the slot but untimed: what is set up once (starting the read
        workers in the background), not the store's answer.

        Raises:
            ApiError: 503 when no slot came free in time, 499 when the asker hung up while waiting.
            StoreUnavailableError: The store did not answer in time. The read keeps its slot until
                the driver's timeouts end it: a silent store never holds more workers than slots.
        """
        try:
            async with asyncio.timeout(self._wait_s):
                await self._slots.acquire()
        except TimeoutError:
            raise ApiError(
                503, "too many long reads at once: ask again in a moment", headers=RETRY_AFTER
            ) from None
        handed_over = False
        try:
            if await request.is_disconnected():  # the asker hung up while waiting: no work for nobody
                raise ApiError(499, "client closed the request")
            if prepare is not None:
                await prepare()
            work = asyncio.ensure_future(read())
            done, _ = await asyncio.wait({work}, timeout=self._timeout_s)
            if not done:
                work.add_done_callback(self._release_late)
                handed_over = True
                raise StoreUnavailableError(f"no answer within {self._timeout_s:g} s")
            return work.result()
        finally:
            if not handed_over:
                self._slots.release()

    def _release_late(self, work: asyncio.Future[Any]) -> None:
        """Give back the slot of a read answered 503 already, once it ends (its error: dropped)."""
        self._slots.release()
        if not work.cancelled():
            work.exception()  # retrieved: no "exception was never retrieved" in the log
