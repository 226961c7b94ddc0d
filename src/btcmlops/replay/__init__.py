"""The replay: the whole contest over a candle file, in one process, with no servers.

It loads the file into the price store, closes every month in order with the same ``Contest`` the
live trainer uses, and writes what happened: ``predictions.csv``, ``summary.json`` and a report.
"""

from btcmlops.replay.run import ReplayError, ReplayResult, run_replay

__all__ = ["ReplayError", "ReplayResult", "run_replay"]
