"""How the long-running services (feed, trainer) outlive a fault: retry with a doubling wait.

A transient fault (the database restarting or locked, MLflow or S3 answering 5xx or not at all, a
network hiccup) is logged and retried after a wait that doubles up to a cap and starts again from the
first wait once a try succeeds. A configuration error (a malformed store URL, a database driver that
is not installed, credentials the database refuses, an unknown feature set, a GPU asked for where
there is none) cannot heal by waiting: it ends the process at once, with its cause.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

import pydantic
import sqlalchemy.exc

from btcmlops.features import UnknownFeatureSetError
from btcmlops.settings import ConfigurationError

logger = logging.getLogger(__name__)

T = TypeVar("T")

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


def wait_after(error: Exception, backoff: Backoff, what: str) -> float:
    """Log a failed ``what`` and return the wait before retrying it; re-raise a configuration error."""
    if is_configuration_error(error):
        logger.error("%s failed on a configuration error: %s: %s", what, type(error).__name__, error)
        raise error
    wait = backoff.failed()
    logger.warning(
        "%s failed (%s: %s); retry %d in %.1f s",
        what,
        type(error).__name__,
        _short(error),
        backoff.failures,
        wait,
    )
    return wait


def retrying(call: Callable[[], T], stop: threading.Event, backoff: Backoff, what: str) -> T | None:
    """``call()`` until it succeeds, waiting ``backoff`` after each transient failure; None if stopped."""
    while not stop.is_set():
        try:
            result = call()
        except Exception as error:
            if stop.wait(wait_after(error, backoff, what)):
                return None
        else:
            backoff.succeeded()
            return result
    return None


def _short(error: Exception, limit: int = 300) -> str:
    text = str(error).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."
