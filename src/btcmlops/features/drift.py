"""Feature drift: the Population Stability Index of a recent window of features against a reference.

One statistic, used by the service (the last 7 sim days against the champion's training window) and by
the contest (the shadow month against the same): each model feature is cut into fixed bins taken from
the **reference** alone, the deciles of its values (``DRIFT_BINS`` bins, the outer two open-ended, a
cut point repeated by tied values, as in the calendar features, kept once), and

    PSI = sum over bins of (current share - reference share) * ln(current share / reference share)

with each share floored at ``SHARE_FLOOR`` first (an empty bin on either side would be infinite). A
value goes in the bin whose upper cut point is the first at or above it. Identical windows give 0; the
more of the current window falls where the reference is thin, the larger it is.

The usual reading (``drift_status``): below 0.1 stable, 0.1 to the drift threshold (0.25) moderate,
above it drifted. With a 7-day window (168 hours) sampling alone gives about ``(bins - 1) / hours``,
0.05: a stable feature stays under 0.1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "DRIFTED_PSI",
    "DRIFT_BINS",
    "MODERATE_PSI",
    "SHARE_FLOOR",
    "DriftStatus",
    "ReferenceBins",
    "drift_status",
    "population_stability_index",
    "reference_bins",
    "worst_status",
]

DRIFT_BINS = 10
"""Bins per feature: the reference's deciles (fewer where tied values repeat a cut point)."""
SHARE_FLOOR = 1e-4
"""The smallest share a bin counts with, on either side: an empty bin adds a large, finite term."""
MODERATE_PSI = 0.1
"""At or above: moderate drift (below: stable)."""
DRIFTED_PSI = 0.25
"""Above: drifted. ``BTCMLOPS_SERVE__DRIFT_PSI_THRESHOLD``'s default and the FeatureDrift alert's bound."""

DriftStatus = Literal["stable", "moderate", "drifted"]


@dataclass(frozen=True)
class ReferenceBins:
    """The fixed bins of each feature and the reference's share in each: computed once per reference
    window (a champion's training window), then applied to every current window."""

    columns: tuple[str, ...]
    cuts: tuple[npt.NDArray[np.float64], ...]
    """Each feature's inner cut points, ascending and distinct (``len(cuts) + 1`` bins)."""
    shares: tuple[npt.NDArray[np.float64], ...]
    """Each feature's reference share per bin, floored at ``SHARE_FLOOR``."""
    rows: int
    """Reference rows the bins were taken from."""

    def psi(self, current: npt.ArrayLike) -> dict[str, float]:
        """Each feature's PSI of ``current`` (rows x ``columns``, the reference's column order) against
        the reference; empty when ``current`` has no row (nothing to compare)."""
        values = np.asarray(current, dtype=np.float64).reshape(-1, len(self.columns))
        if len(values) == 0:
            return {}
        return {
            column: _psi(_shares(values[:, i], cuts), reference)
            for i, (column, cuts, reference) in enumerate(
                zip(self.columns, self.cuts, self.shares, strict=True)
            )
        }


def reference_bins(reference: npt.ArrayLike, columns: Sequence[str]) -> ReferenceBins:
    """Fix each feature's bins from ``reference`` (rows x ``columns``): its deciles, ties kept once.

    Raises:
        ValueError: ``reference`` has no row (no bins can be taken from it).
    """
    values = np.asarray(reference, dtype=np.float64).reshape(-1, len(columns))
    if len(values) == 0:
        raise ValueError("no reference rows: drift needs a window to compare with")
    inner = np.arange(1, DRIFT_BINS) / DRIFT_BINS
    cuts, shares = [], []
    # Each feature sorted once, contiguous: its deciles and its count in each bin (a search of the nine
    # cut points in the sorted column) cost a fraction of binning every reference row.
    for column in np.sort(np.ascontiguousarray(values.T), axis=1):
        cut = np.unique(np.quantile(column, inner))
        at_or_below = np.searchsorted(column, cut, side="right")
        counts = np.diff(at_or_below, prepend=0, append=len(column))
        cuts.append(cut)
        shares.append(np.maximum(counts / len(column), SHARE_FLOOR))
    return ReferenceBins(columns=tuple(columns), cuts=tuple(cuts), shares=tuple(shares), rows=len(values))


def population_stability_index(reference: npt.ArrayLike, current: npt.ArrayLike) -> float:
    """The PSI of one feature's ``current`` values against its ``reference`` values (bins from the
    reference, as ``reference_bins``)."""
    bins = reference_bins(np.asarray(reference, dtype=np.float64).reshape(-1, 1), ("x",))
    return bins.psi(np.asarray(current, dtype=np.float64).reshape(-1, 1))["x"]


def drift_status(psi: float, threshold: float = DRIFTED_PSI) -> DriftStatus:
    """Stable below ``MODERATE_PSI``, drifted above ``threshold``, moderate between."""
    if psi > threshold:
        return "drifted"
    return "moderate" if psi >= MODERATE_PSI else "stable"


def worst_status(statuses: Mapping[str, DriftStatus]) -> DriftStatus | None:
    """The worst of the features' statuses (None: no feature)."""
    order: tuple[DriftStatus, ...] = ("stable", "moderate", "drifted")
    return max(statuses.values(), key=order.index) if statuses else None


def _shares(values: npt.NDArray[np.float64], cuts: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The share of ``values`` in each bin (bin i: (cuts[i - 1], cuts[i]]), floored at ``SHARE_FLOOR``."""
    counts = np.bincount(np.searchsorted(cuts, values, side="left"), minlength=len(cuts) + 1)
    return np.maximum(counts / len(values), SHARE_FLOOR)


def _psi(current: npt.NDArray[np.float64], reference: npt.NDArray[np.float64]) -> float:
    return float(np.sum((current - reference) * np.log(current / reference)))
