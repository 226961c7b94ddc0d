"""The inference service: serve the champion's next-hour forecast and follow the registry on its own.

The hot path reads one immutable ``Snapshot`` (candles in memory, their features, the current model
and its forecast for every hour) through a single reference. New candles and a new champion each
build a new snapshot off the request path and replace that reference, so a request in flight
finishes on the snapshot (and model) it started with, and no request waits for a database or MLflow.
"""

from btcmlops.serving.app import create_app

__all__ = ["create_app"]
