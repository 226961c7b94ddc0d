"""The PSI worked out by hand for the tests: numpy's deciles, ``np.digitize`` bins, the stated floor.

Written apart from ``btcmlops.features.drift`` on purpose: the service's and the contest's figures are
checked against this, not against themselves.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt


def psi_by_hand(reference: npt.ArrayLike, current: npt.ArrayLike) -> float:
    """Sum of (current share - reference share) ln(current / reference) over the reference's decile bins
    (closed above, outer bins open), each share at least 1e-4."""
    reference, current = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    cuts = np.unique(np.quantile(reference, [i / 10 for i in range(1, 10)]))
    shares = []
    for values in (reference, current):
        counts = np.bincount(np.digitize(values, cuts, right=True), minlength=len(cuts) + 1)
        shares.append(np.maximum(counts / len(values), 1e-4))
    ref, cur = shares
    return float(sum((c - r) * math.log(c / r) for r, c in zip(ref, cur, strict=True)))
