"""The one way this package retries: every loop that outlives a fault goes through ``keep_trying``
(a thread with a stop ``Event``: the feed, the trainer and its lease, the hourly client, the migration
and registry waits via ``retrying``) or ``keep_trying_async`` (the inference service's watchers, until
cancelled). ``tests/unit/test_retry_loops.py`` checks that no other module sleeps in a loop that catches
errors.

A transient fault (the database restarting or locked, MLflow or S3 answering 5xx or not at all, a
network hiccup) is logged and retried after a wait that doubles up to a cap (``Backoff``; a fixed wait
is a backoff whose first wait is its cap) and starts again from the first wait once a try succeeds. In
a thread, a configuration error (a malformed store URL, a database driver that is not installed,
credentials the database refuses, an unknown feature set, a GPU asked for where there is none) cannot
heal by waiting: it ends the loop at once, with its cause. The inference service's watchers never end:
the service serves on whatever failed (a refused version, a store that is away) and says why.

Why not tenacity or stamina: these retry *one call* until it succeeds. Every loop here is a service's
round, repeated for as long as the process lives, with a heartbeat after each round, a pause between
rounds that is not the backoff, a stop ``Event`` (or cancellation) that must cut a wait short, per-loop
log lines that operators and tests read, and, in the watchers, a wait that ends early once the failed
dependency answers again (``wait_for_answer``). With a library each loop would still need a loop of its
own around a fresh ``Retrying`` per round, a sleep that raises on stop and a custom async sleep: as much
code as these two functions, plus a dependency.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

import pydantic
import sqlalchemy.exc

from btcmlops.features import UnknownFeatureSetError
from btcmlops.redaction import describe_error
from btcmlops.settings import ConfigurationError

logger = logging.getLogger(__name__)

T = TypeVar("T")

Warn = Callable[[Exception, float], None]
"""Logs a failed try that will be tried again, given its error and the wait before the next try."""

CONFIGURATION_ERRORS: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.ArgumentError,  # a malformed URL, an unknown dialect (NoSuchModuleError)
    ImportError,  # the URL's driver is not installed
    UnknownFeatureSetError,
    ConfigurationError,  # e.g. a model family not installed, device=cuda without a GPU
    pydantic.ValidationError,  # settings that do not validate
)

_ACCESS_DENIED = {1044, 1045}
"""MySQL and MariaDB error codes: no access to the database, wrong user or password."""

_MLFLOW_ACCESS_DENIED = {"UNAUTHENTICATED", "PERMISSION_DENIED"}


def is_configuration_error(error: BaseException) -> bool:
    """Whether ``error`` says the configuration is wrong (exit), not that a dependency is down (retry)."""
    if isinstance(error, CONFIGURATION_ERRORS):
        return True
    if isinstance(error, sqlalchemy.exc.DBAPIError):
        args: tuple[object, ...] = getattr(error.orig, "args", ())
        return bool(args) and args[0] in _ACCESS_DENIED
    return getattr(error, "error_code", None) in _MLFLOW_ACCESS_DENIED  # an MlflowException


class Backoff:
    """A wait that doubles after each failure up to ``max_s``, and is ``first_s`` again after a success."""

    def __init__(self, first_s: float, max_s: float) -> None:
        if not 0 < first_s <= max_s:
            raise ValueError(f"need 0 < first_s <= max_s, got {first_s} and {max_s}")
        self.first_s = first_s
        self.max_s = max_s
        self._next_s = first_s
        self.failures = 0
        """Failures in a row."""

    def failed(self) -> float:
        """Record a failure; return how long to wait before the next try."""
        wait = self._next_s
        self._next_s = min(self._next_s * 2, self.max_s)
        self.failures += 1
        return wait

    def succeeded(self) -> None:
        self._next_s = self.first_s
        self.failures = 0


def wait_after(
    error: Exception,
    backoff: Backoff,
    what: str,
    *,
    warn: Warn | None = None,
    log: logging.Logger = logger,
) -> float:
    """Log a failed ``what`` (by ``warn``, else the line below) and return the wait before retrying it;
    re-raise a configuration error."""
    if is_configuration_error(error):
        log.error("%s failed on a configuration error: %s: %s", what, type(error).__name__, error)
        raise error
    wait = backoff.failed()
    if warn is not None:
        warn(error, wait)
        return wait
    log.warning(
        "%s failed (%s: %s); retry %d in %.1f s",
        what,
        type(error).__name__,
        describe_error(error),  # the cause in a few words, not MLflow's whole request line
        backoff.failures,
        wait,
    )
    return wait


def keep_trying(
    round_: Callable[[], float | None],
    stop: threading.Event,
    backoff: Backoff,
    what: str,
    *,
    retry_on: tuple[type[Exception], ...] = (Exception,),
    warn: Warn | None = None,
    on_round: Callable[[], None] | None = None,
    log: logging.Logger = logger,
) -> bool:
    """Run ``round_`` until it returns None (then True) or ``stop`` is set (then False, the wait cut short).

    A round returns how long to wait before the next one. A round that raises one of ``retry_on`` is
    logged (by ``warn``, else ``wait_after``'s line) and tried again after the backoff's next wait; a
    configuration error, or an error not in ``retry_on``, is raised at once. The first round that
    succeeds after failures resets the backoff and, if the loop goes on, says so ("<what> succeeded
    again after N failure(s)"). ``on_round`` is called after every round that does not end the loop,
    failed or not (a heartbeat). Lines are logged on ``log``, the caller's logger.
    """
    while not stop.is_set():
        try:
            wait = round_()
        except retry_on as error:
            wait = wait_after(error, backoff, what, warn=warn, log=log)
        else:
            if backoff.failures and wait is not None:
                log.info("%s succeeded again after %d failure(s)", what, backoff.failures)
            backoff.succeeded()
            if wait is None:
                return True
        if on_round is not None:
            on_round()
        stop.wait(wait)
    return False


def retrying(call: Callable[[], T], stop: threading.Event, backoff: Backoff, what: str) -> T | None:
    """``call()`` until it succeeds, waiting ``backoff`` after each transient failure; None if stopped."""
    results: list[T] = []

    def once() -> None:
        results.append(call())

    return results[0] if keep_trying(once, stop, backoff, what) else None


async def keep_trying_async(
    round_: Callable[[], Awaitable[None]],
    backoff: Backoff,
    what: str,
    *,
    warn: Warn,
    pause: Callable[[], Awaitable[None]],
    probe: Callable[[], Awaitable[bool]] | None = None,
    on_success: Callable[[], None] | None = None,
    log: logging.Logger = logger,
) -> NoReturn:
    """Run ``round_`` until cancelled: ``pause()`` after a success, the backoff's wait after a failure.

    No error ends it (a service serves on whatever failed, and says why through ``warn``); a
    cancellation ends it at once, also inside a wait. With ``probe``, the wait after a failure asks it
    every ``backoff.first_s`` and ends early once the dependency answers again (``wait_for_answer``):
    this early retry is the one wait strategy of the watchers, kept here rather than in a retry
    library's ``wait``/``before_sleep`` hooks because it needs the probe's state across the wait (a
    probe that failed, then one that answers) and must leave the next round to run at once.
    ``on_success`` is called after every round that succeeds.
    """
    while True:
        try:
            await round_()
        except Exception as error:
            wait = backoff.failed()
            warn(error, wait)
            if probe is None:
                await asyncio.sleep(wait)
            elif await wait_for_answer(probe, wait, backoff.first_s):
                log.info("%s: the dependency answers again, retrying now", what)
            continue
        backoff.succeeded()
        if on_success is not None:
            on_success()
        await pause()


async def wait_for_answer(probe: Callable[[], Awaitable[bool]], wait_s: float, step_s: float) -> bool:
    """Sleep up to ``wait_s`` after a failure, asking ``probe`` every ``step_s``; True to retry early.

    The dependency answers again once a probe that failed (or did not answer in time) is followed by
    one that succeeds: then the backoff is over at once. A probe that succeeds from the start says the
    failure was not the dependency being away (a refused version, a failed write): the full wait holds,
    unless the probe says (True) that what failed has changed (the alias moved on to another version).
    """
    deadline = time.monotonic() + wait_s
    silent = False
    while (left := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(step_s, left))
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        try:
            async with asyncio.timeout(left):
                changed = await probe()
        except Exception:
            silent = True
            continue
        if silent or changed:
            return True
    return False
