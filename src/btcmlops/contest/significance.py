"""Whether the challenger's lower error is more than noise: a Diebold-Mariano test on the shadow month.

The hourly errors of one month are autocorrelated (a model that is off at 10:00 tends to be off at
11:00), so the variance of the mean loss differential is the Newey-West (HAC) one, not the iid one,
which would make a lucky month look significant. statsmodels computes it; this module only decides
what goes in and how to read what comes out. statsmodels and scipy are imported inside the function so
that importing the rule (and the contest package) stays cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MIN_PAIRS = 3
"""Fewest hours a test is run on: a mean and a variance need at least a few."""


@dataclass(frozen=True)
class SignificanceTest:
    """The result of a one-sided Diebold-Mariano test of the challenger against the champion.

    Attributes:
        statistic: Mean loss differential over its HAC standard error; negative when the challenger's
            absolute errors are lower. ``-inf``/``inf`` when the differential is constant (up to
            rounding) and non-zero.
        p_value: One-sided p-value for "the challenger's expected absolute error is lower".
        lags: Lags of the Newey-West (Bartlett) variance.
        n: Number of hours (error pairs) tested.
    """

    statistic: float
    p_value: float
    lags: int
    n: int

    def describe(self, alpha: float | None = None) -> str:
        """Say the result in one short phrase, e.g. ``DM -2.31, p 0.011 (HAC, 6 lags)``.

        Args:
            alpha: If given, the p-value is shown against it (``p 0.011 < alpha 0.05``).
        """
        p = f"p {self.p_value:.3g}"
        if alpha is not None:
            p += f" {'<' if self.p_value < alpha else '>='} alpha {alpha:g}"
        return f"DM {self.statistic:.2f}, {p} (HAC, {self.lags} lag{'' if self.lags == 1 else 's'})"


def newey_west_lags(n: int) -> int:
    """Return the Newey-West rule of thumb for the number of lags: floor(4 * (n / 100) ** (2 / 9))."""
    return math.floor(4.0 * math.pow(n / 100.0, 2.0 / 9.0))


def diebold_mariano(
    champion_abs_errors: npt.ArrayLike,
    challenger_abs_errors: npt.ArrayLike,
    *,
    lags: int | None = None,
) -> SignificanceTest:
    """Test whether the challenger's expected absolute error is lower than the champion's.

    The loss differential is d_t = |e_challenger_t| - |e_champion_t| over the same hours. Its mean is
    regressed on a constant (OLS) with a Newey-West HAC covariance (Bartlett kernel, no small-sample
    correction), so the statistic is the Diebold-Mariano statistic with a long-run variance. Under H0
    (equal expected absolute error) it is asymptotically standard normal, which is also the reference
    distribution statsmodels uses for a HAC t-value; the p-value is one-sided, P(Z <= statistic), for
    H1 "the challenger's expected absolute error is lower". A differential that is constant (up to the
    rounding of the inputs) has no variance: the statistic is then -inf, 0 or inf (p-value 0, 0.5 or
    1) by its sign, without calling statsmodels.

    Args:
        champion_abs_errors: The champion's absolute errors, one per hour (signs are dropped).
        challenger_abs_errors: The challenger's absolute errors on the same hours, in the same order.
        lags: Lags of the HAC variance; by default the Newey-West rule floor(4 * (n / 100) ** (2 / 9))
            (6 for a 30-day month of hourly forecasts). Must be in [0, n).

    Returns:
        The statistic, the one-sided p-value, the lags used and the number of pairs.

    Raises:
        ValueError: If the inputs are not one-dimensional, differ in length, hold fewer than
            ``MIN_PAIRS`` pairs or a non-finite value, or if ``lags`` is out of range.
    """
    champion = np.asarray(champion_abs_errors, dtype=float)
    challenger = np.asarray(challenger_abs_errors, dtype=float)
    if champion.ndim != 1 or challenger.ndim != 1:
        raise ValueError(
            f"errors must be one-dimensional: champion shape {champion.shape}, "
            f"challenger shape {challenger.shape}"
        )
    if champion.size != challenger.size:
        raise ValueError(
            f"champion and challenger errors differ in length: champion {champion.size}, "
            f"challenger {challenger.size}"
        )
    n = int(champion.size)
    if n < MIN_PAIRS:
        raise ValueError(
            f"need at least {MIN_PAIRS} error pairs: champion {champion.size}, challenger {challenger.size}"
        )
    if not (np.isfinite(champion).all() and np.isfinite(challenger).all()):
        raise ValueError("errors must be finite (found NaN or infinity)")
    used_lags = newey_west_lags(n) if lags is None else lags
    if not 0 <= used_lags < n:
        raise ValueError(f"lags must be in [0, {n}) for {n} pairs, got {used_lags}")

    # Both terms are non-negative, so finite inputs give a finite differential (no overflow).
    differential = np.abs(challenger) - np.abs(champion)

    from scipy.stats import norm

    # Rounding of |a| - |b| is below a few ulps of the inputs, so a spread (or a mean) within that is
    # no signal: (c + 1) - c is not exactly 1 for every c, and a "constant" differential would
    # otherwise get a standard error of rounding noise and a t of 1e16 instead of a certain answer.
    rounding = 4.0 * float(np.finfo(float).eps) * float(max(np.abs(champion).max(), np.abs(challenger).max()))
    mean = float(differential.mean())
    if float(np.ptp(differential)) <= rounding:
        statistic = _certain(mean, rounding)
    else:
        from statsmodels.regression.linear_model import OLS

        fit = OLS(differential, np.ones((n, 1))).fit(cov_type="HAC", cov_kwds={"maxlags": used_lags})
        standard_error = float(fit.bse[0])
        # A spread above rounding has a positive HAC variance (Bartlett weights keep it non-negative);
        # only underflow of tiny errors can bring it to 0, read as certain rather than divided by.
        statistic = float(fit.params[0]) / standard_error if standard_error > 0 else _certain(mean, rounding)
    return SignificanceTest(statistic=statistic, p_value=float(norm.cdf(statistic)), lags=used_lags, n=n)


def _certain(mean: float, rounding: float) -> float:
    """Return the statistic of a differential without variance: -inf, 0 or inf by the sign of its mean."""
    if abs(mean) <= rounding:
        return 0.0
    return math.copysign(math.inf, mean)
