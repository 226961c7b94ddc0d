"""Writes served forecasts to the store in batches, on its own thread, never on the request path."""

from __future__ import annotations

import logging
import threading
from collections import deque

from btcmlops.store import LoggedPrediction, PriceStore

logger = logging.getLogger(__name__)


class PredictionLogWriter:
    """Collects forecasts in memory (``append`` is O(1), no I/O) and flushes them every interval."""

    def __init__(self, store: PriceStore, interval_s: float) -> None:
        self._store = store
        self._interval_s = interval_s
        self._pending: deque[LoggedPrediction] = deque()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self.written = 0
        self.last_error: str | None = None

    def start(self) -> None:
        self._thread.start()

    def append(self, prediction: LoggedPrediction) -> None:
        self._pending.append(prediction)

    def flush(self) -> None:
        """Write what is pending; on failure keep it for the next try (the store may be back)."""
        batch = []
        while self._pending:
            batch.append(self._pending.popleft())
        if not batch:
            return
        try:
            self._store.log_predictions(batch)
        except Exception as error:  # the database is down: serve on, retry later
            self._pending.extendleft(reversed(batch))
            self.last_error = f"{error.__class__.__name__}: {error}"
            logger.warning("prediction log: %d forecasts kept for retry: %s", len(batch), self.last_error)
            return
        self.written += len(batch)
        self.last_error = None

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.flush()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.flush()
