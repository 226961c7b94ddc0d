"""The drift statistic: PSI, bins from the reference's deciles, shares floored; hand-worked values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from btcmlops.features.drift import (
    DRIFTED_PSI,
    MODERATE_PSI,
    SHARE_FLOOR,
    drift_status,
    population_stability_index,
    reference_bins,
    worst_status,
)


def test_identical_windows_give_zero() -> None:
    values = np.random.default_rng(1).normal(size=500)
    assert population_stability_index(values, values) == 0.0
    assert population_stability_index(values, values[::-1].copy()) == 0.0  # order does not matter


def test_a_two_valued_feature_by_hand() -> None:
    """Half 0, half 1: the deciles are 0 (x4), 0.5, 1 (x4), kept once, so the bins are (-inf, 0],
    (0, 0.5], (0.5, 1], (1, inf) with reference shares 0.5, 0, 0.5, 0. A current window of a quarter 0
    and three quarters 1: (0.25 - 0.5) ln(0.25 / 0.5) + (0.75 - 0.5) ln(0.75 / 0.5) = 0.25 ln 3; the
    two empty bins are floored alike on both sides and add 0."""
    reference = np.array([0.0] * 50 + [1.0] * 50)
    current = np.array([0.0] * 25 + [1.0] * 75)
    bins = reference_bins(reference.reshape(-1, 1), ["x"])
    assert bins.cuts[0].tolist() == [0.0, 0.5, 1.0]
    assert bins.shares[0].tolist() == [0.5, SHARE_FLOOR, 0.5, SHARE_FLOOR]
    assert population_stability_index(reference, current) == pytest.approx(0.25 * math.log(3), rel=1e-12)


def test_every_current_value_in_the_lowest_decile_by_hand() -> None:
    """0..99: ten bins of a tenth each. Current all in the first: (1 - 0.1) ln 10, plus nine empty bins
    floored at 1e-4: 9 (1e-4 - 0.1) ln(1e-4 / 0.1)."""
    reference = np.arange(100.0)
    current = np.arange(10.0)
    expected = 0.9 * math.log(10) + 9 * (1e-4 - 0.1) * math.log(1e-4 / 0.1)
    assert population_stability_index(reference, current) == pytest.approx(expected, rel=1e-12)
    assert expected > 8  # a feature entirely out of its usual range reads as drifted by far


def test_a_value_on_a_cut_point_goes_in_the_bin_below() -> None:
    """Bins are closed above: 9.9, the first decile of 0..99, is in the first bin with 0..9."""
    bins = reference_bins(np.arange(100.0).reshape(-1, 1), ["x"])
    assert bins.cuts[0][0] == pytest.approx(9.9)
    psi = bins.psi(np.array([[bins.cuts[0][0]]] * 10))["x"]
    assert psi == pytest.approx(0.9 * math.log(10) + 9 * (1e-4 - 0.1) * math.log(1e-3), rel=1e-12)


def test_a_shifted_window_drifts_and_a_fresh_sample_of_the_same_does_not() -> None:
    rng = np.random.default_rng(7)
    reference = rng.normal(size=8760)  # a year of hours
    same = rng.normal(size=168)  # a week from the same distribution
    shifted = rng.normal(loc=1.0, size=168)  # a week one standard deviation away
    assert population_stability_index(reference, same) < MODERATE_PSI
    assert population_stability_index(reference, shifted) > DRIFTED_PSI
    wider = rng.normal(scale=3.0, size=168)  # the same mean, three times the volatility
    assert population_stability_index(reference, wider) > DRIFTED_PSI


def test_bins_are_per_feature_and_come_from_the_reference_only() -> None:
    rng = np.random.default_rng(3)
    reference = np.column_stack([rng.normal(size=1000), rng.integers(0, 24, size=1000)])
    bins = reference_bins(reference, ["ret_1", "hour"])
    assert bins.rows == 1000
    assert len(bins.cuts[0]) == 9  # a continuous feature: nine distinct deciles
    assert len(bins.cuts[1]) == len(np.unique(bins.cuts[1])) <= 9
    current = np.column_stack([rng.normal(loc=2.0, size=200), rng.integers(0, 24, size=200)])
    psi = bins.psi(current)
    assert list(psi) == ["ret_1", "hour"]
    assert psi["ret_1"] > DRIFTED_PSI > MODERATE_PSI > psi["hour"]
    assert bins.psi(np.empty((0, 2))) == {}


def test_no_reference_is_refused() -> None:
    with pytest.raises(ValueError, match="no reference rows"):
        reference_bins(np.empty((0, 3)), ["a", "b", "c"])


@pytest.mark.parametrize(
    ("psi", "threshold", "status"),
    [
        (0.0, DRIFTED_PSI, "stable"),
        (0.0999, DRIFTED_PSI, "stable"),
        (0.1, DRIFTED_PSI, "moderate"),
        (0.25, DRIFTED_PSI, "moderate"),
        (0.2501, DRIFTED_PSI, "drifted"),
        (0.2, 0.15, "drifted"),
    ],
)
def test_status_reads_the_stated_convention(psi: float, threshold: float, status: str) -> None:
    assert drift_status(psi, threshold) == status


def test_worst_status() -> None:
    assert worst_status({"a": "stable", "b": "drifted", "c": "moderate"}) == "drifted"
    assert worst_status({"a": "stable", "b": "moderate"}) == "moderate"
    assert worst_status({}) is None
