"""The Diebold-Mariano test on synthetic months whose answer is known: power, size, and why HAC matters.

The rejection-rate bands are binomial: with 300 seeded months a band is wide enough that a correct test
(true rate within the stated range) falls outside it with probability below about 1e-4, so the tests
pin behaviour without being flaky if the seeds or numpy's generator ever change.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from scipy import signal, stats

from btcmlops.contest import SignificanceTest, diebold_mariano

HOURS = 720  # a 30-day shadow month
SEEDS = 300
ALPHA = 0.05


def _month(seed: int, challenger_shift: float) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Absolute errors of a month: champion ~ 100 + noise, challenger ``challenger_shift`` higher."""
    rng = np.random.default_rng(seed)
    champion = np.abs(100.0 + rng.normal(0.0, 20.0, HOURS))
    challenger = np.abs(100.0 + challenger_shift + rng.normal(0.0, 20.0, HOURS))
    return champion, challenger


def _ar1(seed: int, phi: float) -> npt.NDArray[np.float64]:
    """A zero-mean AR(1) series of ``HOURS`` values, after a burn-in that forgets the start at 0."""
    burn_in = 200
    shocks = np.random.default_rng(seed).normal(0.0, 1.0, HOURS + burn_in)
    series: npt.NDArray[np.float64] = signal.lfilter([1.0], [1.0, -phi], shocks)[burn_in:]
    return series


def test_a_clearly_better_challenger_is_significant() -> None:
    result = diebold_mariano(*_month(seed=1, challenger_shift=-10.0))
    assert result.statistic < 0
    assert result.p_value < 0.01
    assert (result.n, result.lags) == (HOURS, 6)  # floor(4 * 7.2 ** (2 / 9)) = 6


def test_a_clearly_worse_challenger_is_not() -> None:
    result = diebold_mariano(*_month(seed=2, challenger_shift=+10.0))
    assert result.statistic > 0
    assert result.p_value > 0.99


def test_size_when_both_are_equally_good() -> None:
    """Same error distribution for both: the test rejects about alpha of the time, no more."""
    rejections = sum(
        diebold_mariano(*_month(seed, challenger_shift=0.0)).p_value < ALPHA for seed in range(SEEDS)
    )
    # Measured 14 of 300 (0.047) here, 0.048 on 4000 other seeds. For any true rate in [0.045, 0.06],
    # P(X < 2) < 2e-5 and P(X > 35) < 4e-5 with X ~ Binomial(300, rate).
    assert 2 <= rejections <= 35, f"rejection rate {rejections / SEEDS:.3f}"


def test_hac_keeps_its_size_where_an_iid_t_test_does_not() -> None:
    """Autocorrelated loss differentials with mean 0: HAC rejects about alpha, the iid t-test far more.

    With phi = 0.8 the long-run variance is (1 + phi) / (1 - phi) = 9 times the iid one, so the iid
    t-statistic is about 3 times too large and rejects about P(Z < -1.645 / 3) = 0.29 of the time. The
    lags are set for this persistence (0.8 ** 24 < 0.005): the Newey-West default (6 lags for 720
    hours) suits mild autocorrelation and under-corrects this much (it rejects 0.13 of these months).
    """
    hac = iid = 0
    for seed in range(SEEDS):
        differential = _ar1(seed, phi=0.8)
        # d = |challenger| - |champion|: a flat champion at 100 (the series stays far above -100)
        # makes the challenger's errors 100 + d.
        flat = np.full(HOURS, 100.0)
        hac += diebold_mariano(flat, flat + differential, lags=24).p_value < ALPHA
        iid += stats.ttest_1samp(differential, 0.0, alternative="less").pvalue < ALPHA
    # Measured HAC 22 and iid 94 of 300 (0.073, 0.313) here; 0.077 and 0.292 on 4000 other seeds. With
    # X ~ Binomial(300, rate): P(X > 44 | 0.08) < 4e-5 and P(X < 57 | 0.29) < 5e-5.
    assert hac <= 44, f"HAC rejection rate {hac / SEEDS:.3f}"
    assert iid >= 57, f"iid t-test rejection rate {iid / SEEDS:.3f}"


def test_signed_errors_count_by_their_size() -> None:
    champion, challenger = _month(seed=3, challenger_shift=-10.0)
    assert diebold_mariano(-champion, -challenger) == diebold_mariano(champion, challenger)


def test_default_lags_follow_newey_west() -> None:
    assert diebold_mariano([1.0, 2.0, 3.0, 4.0], [0.5, 2.5, 2.0, 3.0]).lags == 1  # floor(4 * 0.04 ** (2/9))
    assert diebold_mariano(*_month(seed=4, challenger_shift=0.0), lags=0).lags == 0


@pytest.mark.parametrize(
    ("shift", "statistic", "p_value"),
    [(-1.0, -math.inf, 0.0), (1.0, math.inf, 1.0), (0.0, 0.0, 0.5)],
)
def test_a_constant_differential_is_certain(shift: float, statistic: float, p_value: float) -> None:
    champion = np.linspace(50.0, 150.0, HOURS)
    result = diebold_mariano(champion, champion + shift)  # no warning: pytest turns warnings into errors
    assert (result.statistic, result.p_value) == (statistic, p_value)


@pytest.mark.parametrize(
    ("champion", "challenger", "message"),
    [
        ([1.0, 2.0, 3.0], [1.0, 2.0], "champion 3, challenger 2"),
        ([1.0, 2.0], [1.0, 2.0], "at least 3 error pairs: champion 2, challenger 2"),
        ([], [], "champion 0, challenger 0"),
        ([1.0, math.nan, 3.0], [1.0, 2.0, 3.0], "finite"),
        ([1.0, 2.0, 3.0], [1.0, math.inf, 3.0], "finite"),
        ([[1.0, 2.0, 3.0]], [[1.0, 2.0, 3.0]], "one-dimensional"),
    ],
)
def test_bad_input_is_refused(champion: list[float], challenger: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        diebold_mariano(champion, challenger)


@pytest.mark.parametrize("lags", [-1, 3])
def test_lags_out_of_range_are_refused(lags: int) -> None:
    with pytest.raises(ValueError, match=r"lags must be in \[0, 3\)"):
        diebold_mariano([1.0, 2.0, 3.0], [2.0, 1.0, 3.0], lags=lags)


def test_describe() -> None:
    result = SignificanceTest(statistic=-2.3149, p_value=0.0107, lags=6, n=720)
    assert result.describe() == "DM -2.31, p 0.0107 (HAC, 6 lags)"
    assert result.describe(alpha=0.05) == "DM -2.31, p 0.0107 < alpha 0.05 (HAC, 6 lags)"
    certain = SignificanceTest(statistic=math.inf, p_value=1.0, lags=1, n=3)
    assert certain.describe(alpha=0.05) == "DM inf, p 1 >= alpha 0.05 (HAC, 1 lag)"
