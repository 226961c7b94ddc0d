"""The inference service's HTTP server: uvicorn, with every connection bounded in time and in number.

Why this exists: uvicorn (0.54, httptools) times a connection out only after a response (its keep-alive
timer) and has no limit on how long a client may take to send its headers or its body; its
``limit_concurrency`` answers 503 to *requests*, so a connection that never sends one still holds a
file descriptor, and once the process runs out of them every new client fails, ``/healthz`` included.
A slow or idle client therefore cost a descriptor forever (issue 21: 20,000 half-sent connections
locked everyone out).

``BoundedHttpToolsProtocol`` is uvicorn's own httptools protocol with four bounds added, all at the
connection layer, before the app runs:

- a **connection cap**: a connection beyond ``max_connections`` open ones is answered a short 503
  (``Retry-After: 1``) and closed at once, so its descriptor is released at once;
- a **header deadline**: from the accept (or from the end of the previous response on a kept-alive
  connection) the request's headers must be complete within ``header_timeout_s``;
- a **body deadline**: from the headers, the body must be complete within ``body_timeout_s``;
- past either deadline the client gets ``408 Request Timeout`` (unless the app answered already) and
  the connection is closed. uvicorn's own keep-alive timer (``keep_alive_timeout_s``) still closes a
  kept-alive connection that says nothing.

The body's *size* (64 KiB) is the app's ``BodyLimitMiddleware``; this module bounds only time and count.
``run_server`` is the one way the service is started (``btcmlops serve``, and through it compose, the
Helm chart and the native stack); it also raises the process's open-file limit so the cap fits under it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from btcmlops.settings import ServeSettings

logger = logging.getLogger(__name__)

OPEN_FILES_HEADROOM = 256
"""Descriptors kept free beside the client connections: the listening socket, the price store's pool,
MLflow's HTTP connections, model and write-ahead files, logs (a serve process holds about 20 at rest)."""


@dataclass(frozen=True)
class ConnectionLimits:
    """How long a client may take to send a request, and how many connections may be open at once."""

    header_timeout_s: float
    body_timeout_s: float
    max_connections: int


def _raw_answer(status: bytes, detail: str, extra_headers: bytes = b"") -> bytes:
    """A whole HTTP/1.1 answer that closes the connection, written without the app."""
    body = (detail + "\n").encode("ascii")
    return (
        b"HTTP/1.1 " + status + b"\r\n"
        b"content-type: text/plain; charset=utf-8\r\n"
        b"content-length: " + str(len(body)).encode("ascii") + b"\r\n"
        b"connection: close\r\n" + extra_headers + b"\r\n" + body
    )


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a connection cap and header and body deadlines.

    uvicorn makes one instance per connection; ``limits`` is set on a subclass per server
    (``protocol_class``). It relies on these parts of ``HttpToolsProtocol`` (private API, uvicorn 0.54,
    pinned by ``tests/unit/serving/test_server.py``): ``connections`` (the server's set of open
    connections, added to in ``connection_made``), ``transport``, ``loop``, ``cycle`` (its
    ``response_started`` / ``response_complete``), ``pipeline``, and the parser callbacks
    ``on_headers_complete``, ``on_message_complete``, ``on_response_complete``.
    """

    limits: ClassVar[ConnectionLimits]
    _header_deadline: asyncio.TimerHandle | None = None
    _body_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # adds this connection to self.connections
        if len(self.connections) > self.limits.max_connections:
            self.transport.write(self._too_many())
            self.transport.close()  # connection_lost follows and takes it out of self.connections
            return
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        self._cancel_body_deadline()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        self._cancel_header_deadline()
        super().on_headers_complete()
        self._cancel_body_deadline()
        self._body_deadline = self.loop.call_later(
            self.limits.body_timeout_s, self._deadline_passed, "body", "BODY", self.limits.body_timeout_s
        )

    def on_message_complete(self) -> None:
        self._cancel_body_deadline()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        waiting_for_next_request = not self.pipeline  # else the next request's headers are here already
        super().on_response_complete()
        if waiting_for_next_request and not self.transport.is_closing():
            # uvicorn's keep-alive timer closes a silent connection; this one, a client that dribbles.
            self._arm_header_deadline()

    def _arm_header_deadline(self) -> None:
        self._cancel_header_deadline()
        self._header_deadline = self.loop.call_later(
            self.limits.header_timeout_s,
            self._deadline_passed,
            "headers",
            "HEADER",
            self.limits.header_timeout_s,
        )

    def _cancel_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _cancel_body_deadline(self) -> None:
        if self._body_deadline is not None:
            self._body_deadline.cancel()
            self._body_deadline = None

    def _deadline_passed(self, part: str, setting: str, timeout_s: float) -> None:
        """The client took too long to send a request's ``part``: 408 and close (no 408 where the app
        answered that request already, without waiting for its body)."""
        if self.transport.is_closing():
            return
        answered = part == "body" and self.cycle is not None and self.cycle.response_started
        if not answered:
            detail = (
                f"request timed out: its {part} did not arrive within {timeout_s:g} s "
                f"(BTCMLOPS_SERVE__{setting}_TIMEOUT_S)"
            )
            self.transport.write(_raw_answer(b"408 Request Timeout", detail))
        self.transport.close()

    def _too_many(self) -> bytes:
        detail = (
            f"the service holds too many connections ({self.limits.max_connections}, "
            "BTCMLOPS_SERVE__MAX_CONNECTIONS): try again in a moment"
        )
        return _raw_answer(b"503 Service Unavailable", detail, b"retry-after: 1\r\n")


def protocol_class(limits: ConnectionLimits) -> type[BoundedHttpToolsProtocol]:
    """``BoundedHttpToolsProtocol`` with ``limits``: uvicorn builds the protocol from a class only."""

    class Bounded(BoundedHttpToolsProtocol):
        pass

    Bounded.limits = limits
    return Bounded


def fit_open_files(max_connections: int, headroom: int = OPEN_FILES_HEADROOM) -> int:
    """Raise the soft open-file limit so ``max_connections`` plus ``headroom`` fit; the cap that fits.

    The soft limit is raised toward the hard one (an unprivileged process may); where even the hard
    limit is too low, the cap is lowered to what fits, with a warning naming both numbers, so the
    service refuses connections with a 503 before the kernel refuses them with EMFILE.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + headroom
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if raised > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return max_connections
    fitting = max(soft - headroom, 1)
    logger.warning(
        "BTCMLOPS_SERVE__MAX_CONNECTIONS=%d does not fit under the open-file limit %d (hard limit %d, "
        "%d kept for the service itself): capping connections at %d",
        max_connections,
        soft,
        hard,
        headroom,
        fitting,
    )
    return fitting


def server_config(
    app: ASGIApp, settings: ServeSettings, *, host: str, port: int, max_connections: int
) -> uvicorn.Config:
    """The uvicorn configuration of the service: the bounded protocol, uvicorn's keep-alive timeout."""
    limits = ConnectionLimits(settings.header_timeout_s, settings.body_timeout_s, max_connections)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol_class(limits),
        ws="none",  # no WebSocket routes; an upgraded connection would leave the protocol's bounds
        timeout_keep_alive=settings.keep_alive_timeout_s,
        log_level="info",
        access_log=False,  # per-request logging stays off the hot path; /metrics counts requests
    )


def run_server(app: ASGIApp, settings: ServeSettings, *, host: str, port: int) -> None:
    """Serve ``app`` until SIGINT/SIGTERM, every connection bounded; exit 3 if it could not start
    (as ``uvicorn.run`` does)."""
    max_connections = fit_open_files(settings.max_connections)
    server = uvicorn.Server(
        server_config(app, settings, host=host, port=port, max_connections=max_connections)
    )
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the SIGINT it stopped on
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)
