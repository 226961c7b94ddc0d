"""The replay: the whole contest over a candle file, in one process, with no servers.

It loads the file into the price store, closes every month in order with the same ``Contest`` the
live trainer uses, and writes what happened: ``predictions.csv``, ``summary.json`` and a report.

The names below are read from ``btcmlops.replay.run`` when first asked for, not when the package is
imported: a process that needs only ``btcmlops.replay.executors`` (the CLI starting the fits' pool
before anything else, a spawned worker) does not pay for MLflow, the stores and the report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from btcmlops.replay.run import ReplayError, ReplayResult, run_replay

__all__ = ["ReplayError", "ReplayResult", "run_replay"]


def __getattr__(name: str) -> Any:
    """Import ``btcmlops.replay.run`` on the first use of one of its exported names."""
    if name in __all__:
        from btcmlops.replay import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
