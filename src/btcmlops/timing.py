"""Wall-clock accounting by category, so a replay can say where its time went."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager


class Timings:
    """Accumulates seconds per category (``training``, ``mlflow``, ...); nested categories add up."""

    def __init__(self) -> None:
        self._seconds: defaultdict[str, float] = defaultdict(float)

    @contextmanager
    def measure(self, category: str) -> Iterator[None]:
        """Add the wall time of the ``with`` block to ``category``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self._seconds[category] += time.perf_counter() - start

    def seconds(self, category: str) -> float:
        return self._seconds.get(category, 0.0)

    def as_dict(self) -> dict[str, float]:
        return {f"{name}_s": round(value, 3) for name, value in sorted(self._seconds.items())}
