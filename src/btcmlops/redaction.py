"""One redaction for every text that leaves a process: no credentials anywhere, no address in an answer.

Settings hold URLs that may carry a user and password (``http://user:pw@mlflow:5000``,
``mysql+pymysql://btc:pw@db/btc``), and the errors of the libraries that use them quote those URLs
(MLflow's "API request to http://user:pw@... failed"), hosts and ports (requests' ``host='db',
port=5000``, PyMySQL's "Can't connect to MySQL server on 'db'"). Two levels, each in one place:

- ``redact``: user info out of every URL (any scheme) and ``password=`` style pairs out of every query
  or DSN. For everything an operator reads: log lines (``install_log_redaction``), CLI output, files.
- ``describe_error``: what failed and why, with no credentials and no location. For everything anyone
  may read: HTTP answers, ``/model``, ``/metrics``, the dashboard.
"""

from __future__ import annotations

import errno
import io
import logging
import re
import socket
import sys
from collections.abc import Iterator
from typing import IO, Any, cast

_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)[^\s/?#'\"<>@:]*(?::[^\s/?#'\"<>]*)?@")
"""``scheme://user[:password]@``: the user info of any URL, a password holding ``@`` or ``:`` included
(greedy up to the authority's last ``@``)."""

_SECRET_PAIR = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|secret[_-]?access[_-]?key)"
    r"\s*=\s*)(?P<value>'[^']*'|\"[^\"]*\"|[^\s&;,)'\"]+)",
    re.IGNORECASE,
)
"""``password=...`` in a query string or a DSN (``?password=pw``, ``password='pw'``), by its key."""

HIDDEN = "***"

_URL = re.compile(r"\b(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://[^\s'\"<>()\[\]{},]+")
_HOST_FIELD = re.compile(r"\b(?P<key>host|hostname|port|address)\s*=\s*(?:'[^']*'|\"[^\"]*\"|[^\s,)]+)", re.I)
_QUOTED_AFTER = re.compile(r"\b(?P<word>on|at|to|for|from)\s+'[^']+'(?:\s*\(\s*\d+\s*\))?")
_USER_AT_HOST = re.compile(r"'(?P<user>[^']*)'@'[^']*'")
_IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b")
_IPV6_BRACKETED = re.compile(r"\[[0-9A-Fa-f:]+\](?::\d+)?")


def redact(text: str) -> str:
    """``text`` with the user info of every URL and every ``password=`` style value replaced by ``***``."""
    if "@" not in text and "=" not in text:
        return text  # the common case (most log lines), at the cost of one scan
    text = _URL_USERINFO.sub(lambda match: f"{match['scheme']}{HIDDEN}@", text)
    return _SECRET_PAIR.sub(lambda match: f"{match['key']}{HIDDEN}", text)


def conceal_locations(text: str) -> str:
    """``text`` redacted, with every URL, host, port and address replaced by what it is, not where."""
    text = redact(text)
    text = _URL.sub(lambda match: f"<{match['scheme']} URL>", text)
    text = _HOST_FIELD.sub(lambda match: f"{match['key']}=<{match['key'].lower()}>", text)
    text = _USER_AT_HOST.sub(lambda match: f"'{match['user']}'", text)
    text = _QUOTED_AFTER.sub(lambda match: f"{match['word']} <host>", text)
    text = _IPV6_BRACKETED.sub("<address>", text)
    return _IPV4.sub("<address>", text)


_TRANSPORT_WORDS: dict[int, str] = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.ECONNABORTED: "connection aborted",
    errno.EPIPE: "connection closed",
    errno.ETIMEDOUT: "no answer in time",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
}


def describe_error(error: BaseException, limit: int = 300) -> str:
    """``Class: why`` of ``error``, short, safe to show anyone: no credentials, no host, port or URL.

    A failure to reach a dependency is said by its root cause ("ConnectionRefusedError: connection
    refused", "TimeoutError: no answer in time"), found through the causes and the wrappers that
    drivers and HTTP clients put around it; anything else by its own message with locations concealed.
    A SQLAlchemy error is said by the driver's words, without the SQL.
    """
    transport = _transport_failure(error)
    if transport is not None:
        return f"{transport[0].__class__.__name__}: {transport[1]}"
    cause = getattr(error, "orig", None) or error  # a SQLAlchemy DBAPIError: the driver's own error
    return f"{cause.__class__.__name__}: {conceal_locations(str(cause))}"[:limit]


_TRANSPORT_CLASSES: tuple[tuple[type[OSError], str], ...] = (
    (ConnectionRefusedError, "connection refused"),
    (ConnectionResetError, "connection reset"),
    (ConnectionAbortedError, "connection aborted"),
    (BrokenPipeError, "connection closed"),
)


def _transport_failure(error: BaseException) -> tuple[BaseException, str] | None:
    for link in _causes(error):
        for kind, words in _TRANSPORT_CLASSES:
            if isinstance(link, kind):
                return link, words
        if isinstance(link, socket.gaierror):
            return link, "host name not resolved"
        if isinstance(link, TimeoutError):
            return link, "no answer in time"
        if isinstance(link, OSError) and link.errno in _TRANSPORT_WORDS:
            return link, _TRANSPORT_WORDS[link.errno]
    return None


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and what it wraps: causes, contexts, a driver's ``orig``, urllib3's ``reason`` and the
    exceptions in ``args`` (requests puts urllib3's error there), each once."""
    seen: set[int] = set()
    pending: list[Any] = [error]
    while pending:
        link = pending.pop(0)
        if not isinstance(link, BaseException) or id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        pending.extend(
            [link.__cause__, link.__context__, getattr(link, "orig", None), getattr(link, "reason", None)]
        )
        pending.extend(arg for arg in link.args if isinstance(arg, BaseException))


class _RedactedRecord(logging.LogRecord):
    """A log record whose message and traceback text carry no credentials, whoever formats it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        try:
            message = self.getMessage()
        except Exception:  # a bad format string: left for the handler to report as it always does
            return
        shown = redact(message)
        if shown != message:
            self.msg, self.args = shown, None
        if self.exc_info and self.exc_info[1] is not None:
            trace = logging.Formatter().formatException(self.exc_info)
            shown_trace = redact(trace)
            if shown_trace != trace:
                self.exc_text = shown_trace  # formatters use exc_text when it is set


def install_log_redaction() -> None:
    """Make every log record of this process redacted at creation (all loggers, all handlers).

    Called once by each entry point: a filter on a handler would miss the handlers that uvicorn,
    MLflow or Streamlit add, and one on a logger misses the records that propagate through it.
    """
    logging.setLogRecordFactory(_RedactedRecord)


def redacted_stream(*, stderr: bool = False) -> IO[str]:
    """Standard output (or error) through ``redact``, for ``rich.console.Console(file=...)``."""
    return cast(IO[str], RedactedStream(stderr=stderr))


class RedactedStream(io.TextIOBase):
    """The process's standard output or error, written through ``redact``: for a Rich console, so that
    everything the CLI prints (messages, tables, tracebacks) is redacted in one place.

    The stream is looked up at each write, not kept: a test runner that swaps ``sys.stdout`` still
    captures what is printed.
    """

    def __init__(self, *, stderr: bool = False) -> None:
        super().__init__()
        self._stderr = stderr

    @property
    def _target(self) -> Any:
        return sys.stderr if self._stderr else sys.stdout

    def write(self, text: str) -> int:
        self._target.write(redact(text))
        return len(text)

    def flush(self) -> None:
        self._target.flush()

    def isatty(self) -> bool:
        return bool(self._target.isatty())

    def fileno(self) -> int:
        return int(self._target.fileno())

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self._target, "encoding", None) or "utf-8")
