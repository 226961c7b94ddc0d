"""The inference service: serve the champion's next-hour forecast and follow the registry on its own.

The hot path reads one immutable ``Snapshot`` (candles in memory, their features, the current model
and its forecast for every hour) through a single reference. New candles and a new champion each
build a new snapshot off the request path and replace that reference, so a request in flight
finishes on the snapshot (and model) it started with, and no request waits for a database or MLflow.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from btcmlops.serving.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    """``create_app``, imported when first asked for: a read worker (``serving.read_workers``) imports
    ``serving.pages`` without the service's app, registry and MLflow, seconds it need not spend."""
    if name == "create_app":
        from btcmlops.serving.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
