"""Live drift: each model feature of the last 7 sim days against the champion's training window.

The statistic is ``btcmlops.features.drift``'s (PSI, bins fixed from the reference). The reference is
the features of the hours T the serving champion was trained on (target T + 1 h inside its training
window, as the contest's training samples), the current window the features of the hours whose candle
closed in the last 7 sim days, ``(now - 7 d, now]``, now being the sim clock's (or the newest candle's
close without a clock), both read from the snapshot in memory: no store or MLflow call.

Nothing here runs on the request path: ``LiveDrift.update`` runs on the live scorer's thread after each
read of new candles (and at least every poll interval, so a swap is seen within one), and does work
only when the champion or the window moved; the reference's bins are taken once per champion. A scrape
and ``GET /drift`` read the last reading, an immutable value replaced in one reference.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from btcmlops.features import get_feature_set
from btcmlops.features.drift import ReferenceBins, reference_bins
from btcmlops.serving.live_scores import WINDOW
from btcmlops.serving.snapshot import Snapshot, hour_number, hour_time

__all__ = ["DRIFT_WINDOW_LABEL", "MIN_CURRENT_HOURS", "DriftCollector", "DriftReading", "LiveDrift"]

DRIFT_WINDOW_LABEL = "7d"
"""The ``window`` label of ``btcmlops_feature_drift_psi``: the current window's length in sim time."""
WINDOW_HOURS = int(WINDOW.total_seconds() // 3600)
MIN_CURRENT_HOURS = 24
"""Fewest hours of features the current window needs for a PSI (fewer: none is given). Over a day's
hours a decile bin holds about 2; below that sampling noise alone reads as drift."""


@dataclass(frozen=True)
class DriftReading:
    """One comparison: the champion, both windows (first and last hour T whose features count, and how
    many hours), and each feature's PSI (empty while the current window is under ``MIN_CURRENT_HOURS``)."""

    model_version: int
    reference_start: datetime
    reference_end: datetime
    reference_hours: int
    current_start: datetime
    current_end: datetime
    current_hours: int
    psi: dict[str, float]


class LiveDrift:
    """The last drift reading of the serving champion, kept up to date from the snapshot."""

    def __init__(self) -> None:
        self.reading: DriftReading | None = None
        """None: no champion, no reference hour in memory, or no candle yet."""
        self._bins: tuple[tuple[int, int], ReferenceBins, int, int] | None = None
        """((version, reference rows in memory), bins, first and last reference hour)."""
        self._seen: tuple[Snapshot, int] | None = None
        """The snapshot and window start of the last reading: the same again is nothing new."""

    def update(self, snapshot: Snapshot, now: datetime | None) -> bool:
        """Compare the last 7 sim days before ``now`` with the champion's training window; True if a new
        reading was made (nothing is done when neither the champion nor the window moved)."""
        model = snapshot.model
        if model is None or now is None or snapshot.latest_hour is None:
            self.reading, self._seen = None, None
            return False
        end = min(math.floor(now.timestamp() / 3600) - 1, snapshot.latest_hour)  # its candle closed by now
        start = end - WINDOW_HOURS + 1
        if self._seen is not None and self._seen[0] is snapshot and self._seen[1] == start:
            return False
        self._seen = (snapshot, start)
        window = model.info.window
        first_ref, last_ref = hour_number(window.train_start) - 1, hour_number(window.train_end) - 1
        ref_lo, ref_hi = np.searchsorted(snapshot.hours, [first_ref, last_ref + 1])
        bins = self._reference(snapshot, (model.info.version, int(ref_hi - ref_lo)), first_ref, last_ref)
        if bins is None:
            self.reading = None
            return True
        lo, hi = np.searchsorted(snapshot.hours, [start, end + 1])
        rows = np.arange(lo, hi)[snapshot.valid[lo:hi]]
        current = snapshot.features[rows]
        self.reading = DriftReading(
            model_version=model.info.version,
            reference_start=hour_time(bins[1]),
            reference_end=hour_time(bins[2]),
            reference_hours=bins[0].rows,
            current_start=hour_time(int(snapshot.hours[rows[0]]) if len(rows) else start),
            current_end=hour_time(int(snapshot.hours[rows[-1]]) if len(rows) else end),
            current_hours=len(rows),
            psi=bins[0].psi(current) if len(rows) >= MIN_CURRENT_HOURS else {},
        )
        return True

    def _reference(
        self, snapshot: Snapshot, key: tuple[int, int], first: int, last: int
    ) -> tuple[ReferenceBins, int, int] | None:
        """The champion's reference bins (taken again only when the champion or its hours in memory
        changed): the valid hours T in [first, last] whose next hour is in memory too."""
        if self._bins is not None and self._bins[0] == key:
            return self._bins[1], self._bins[2], self._bins[3]
        lo, hi = np.searchsorted(snapshot.hours, [first, last + 1])
        hours = snapshot.hours[lo:hi]
        targets = np.searchsorted(snapshot.hours, hours + 1)
        has_target = np.zeros(len(hours), dtype=bool)
        inside = targets < len(snapshot.hours)
        has_target[inside] = snapshot.hours[targets[inside]] == hours[inside] + 1
        rows = np.arange(lo, hi)[snapshot.valid[lo:hi] & has_target]
        if not len(rows):
            self._bins = None
            return None
        columns = get_feature_set(snapshot.feature_set).columns
        bins = reference_bins(snapshot.features[rows], columns)
        self._bins = (key, bins, int(snapshot.hours[rows[0]]), int(snapshot.hours[rows[-1]]))
        return bins, self._bins[2], self._bins[3]


class DriftCollector(Collector):
    """``btcmlops_feature_drift_psi{feature, model_version, window}``, read at scrape time."""

    def __init__(self, drift: LiveDrift) -> None:
        self._drift = drift

    def describe(self) -> Iterable[Metric]:
        return [self._family(None)]

    def collect(self) -> Iterable[Metric]:
        return [self._family(self._drift.reading)]

    @staticmethod
    def _family(reading: DriftReading | None) -> Metric:
        family = GaugeMetricFamily(
            "btcmlops_feature_drift_psi",
            "Population Stability Index of each model feature over the last 7 sim days against the "
            "champion's training window (bins: the training window's deciles).",
            labels=["feature", "model_version", "window"],
        )
        if reading is not None:
            for feature, value in reading.psi.items():
                family.add_metric([feature, str(reading.model_version), DRIFT_WINDOW_LABEL], value)
        return family
