"""Scores of a set of forecasts against what happened.

The point: MAE, RMSE, MAPE and directional accuracy. The interval: coverage, mean width, interval score
(Gneiting and Raftery's, also called Winkler's) and pinball loss. One function per hourly loss
(``absolute_errors``, ``absolute_percentage_errors``, ``interval_hits``, ``hourly_interval_scores``),
used by the scores here, by the significance test of the contest and by the service's live scores
alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd


@dataclass(frozen=True)
class Scores:
    """How a contestant did on one set of hours (prices in USDT, MAPE and accuracy as fractions).

    Directional accuracy is the share of hours where the forecast moved from the last close in the
    same direction as the market (a flat forecast never counts as right, so the naive baseline's is
    about zero: it has no view on direction).
    """

    n: int
    mae: float
    rmse: float
    mape: float
    directional_accuracy: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def score(actual: npt.ArrayLike, predicted: npt.ArrayLike, last_close: npt.ArrayLike) -> Scores:
    """Score ``predicted`` closes against ``actual`` closes; ``last_close`` is the close at T."""
    actual_a = np.asarray(actual, dtype=float)
    predicted_a = np.asarray(predicted, dtype=float)
    last_a = np.asarray(last_close, dtype=float)
    if not (actual_a.shape == predicted_a.shape == last_a.shape):
        raise ValueError("actual, predicted and last_close must have the same length")
    if actual_a.size == 0:
        raise ValueError("cannot score zero forecasts")
    error = predicted_a - actual_a
    moved = np.sign(actual_a - last_a)
    called = np.sign(predicted_a - last_a)
    return Scores(
        n=int(actual_a.size),
        mae=float(np.mean(absolute_errors(actual_a, predicted_a))),
        rmse=float(np.sqrt(np.mean(error**2))),
        mape=float(np.mean(absolute_percentage_errors(actual_a, predicted_a))),
        directional_accuracy=float(np.mean((called == moved) & (called != 0))),
    )


def skill(model_mae: float, naive_mae: float) -> float:
    """Skill against naive: 1 - MAE / naive MAE (0: as good as naive; > 0: better).

    The same for any loss where lower is better (the interval score: interval skill)."""
    return 1.0 - model_mae / naive_mae


def absolute_errors(actual: npt.ArrayLike, predicted: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Each hour's absolute error of the point forecast (the loss MAE averages)."""
    errors: npt.NDArray[np.float64] = np.abs(
        np.asarray(predicted, dtype=float) - np.asarray(actual, dtype=float)
    )
    return errors


def absolute_percentage_errors(actual: npt.ArrayLike, predicted: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Each hour's absolute error as a fraction of the actual close (the loss MAPE averages)."""
    errors: npt.NDArray[np.float64] = absolute_errors(actual, predicted) / np.asarray(actual, dtype=float)
    return errors


def interval_hits(actual: npt.ArrayLike, lower: npt.ArrayLike, upper: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Whether each hour's actual close lies inside its interval (a bound counts as inside)."""
    y = np.asarray(actual, dtype=float)
    inside: npt.NDArray[np.bool_] = (y >= np.asarray(lower, dtype=float)) & (
        y <= np.asarray(upper, dtype=float)
    )
    return inside


def hourly_interval_scores(
    actual: npt.ArrayLike, lower: npt.ArrayLike, upper: npt.ArrayLike, level: float
) -> npt.NDArray[np.float64]:
    """Each hour's interval score at ``level``: width, plus 2 / (1 - level) times any miss.

    Gneiting and Raftery (2007), eq. 43: an interval is rewarded for being narrow and penalised, in
    proportion to the distance, for missing; its expectation is least for the true quantiles, so it
    cannot be gamed by a too-wide or a too-narrow interval. In USDT, lower is better.
    """
    y = np.asarray(actual, dtype=float)
    low = np.asarray(lower, dtype=float)
    high = np.asarray(upper, dtype=float)
    penalty = 2.0 / (1.0 - level)
    scores: npt.NDArray[np.float64] = (
        (high - low) + penalty * np.maximum(low - y, 0.0) + penalty * np.maximum(y - high, 0.0)
    )
    return scores


@dataclass(frozen=True)
class IntervalScores:
    """How an interval at ``level`` did on a set of hours (coverage as a fraction, the rest in USDT).

    ``pinball`` is the mean of the two tails' quantile (pinball) losses, ``(1 - level) / 4`` times the
    interval score: both are given because forecasters quote one or the other.
    """

    n: int
    level: float
    coverage: float
    mean_width: float
    interval_score: float
    pinball: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def score_interval(
    actual: npt.ArrayLike, lower: npt.ArrayLike, upper: npt.ArrayLike, level: float
) -> IntervalScores:
    """Score an interval forecast at ``level`` against ``actual`` closes."""
    y = np.asarray(actual, dtype=float)
    low = np.asarray(lower, dtype=float)
    high = np.asarray(upper, dtype=float)
    if not (y.shape == low.shape == high.shape):
        raise ValueError("actual, lower and upper must have the same length")
    if y.size == 0:
        raise ValueError("cannot score zero intervals")
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise ValueError("an interval to score has a missing or infinite bound")
    tail = (1.0 - level) / 2.0
    pinball_lower = np.where(y < low, (1.0 - tail) * (low - y), tail * (y - low))
    pinball_upper = np.where(y > high, (1.0 - tail) * (y - high), tail * (high - y))
    return IntervalScores(
        n=int(y.size),
        level=float(level),
        coverage=float(np.mean(interval_hits(y, low, high))),
        mean_width=float(np.mean(high - low)),
        interval_score=float(np.mean(hourly_interval_scores(y, low, high, level))),
        pinball=float(np.mean((pinball_lower + pinball_upper) / 2.0)),
    )


def daily_mae(
    target_time: pd.Series, actual: npt.ArrayLike, forecasts: dict[str, npt.ArrayLike]
) -> dict[str, dict[str, float]]:
    """Each contestant's MAE per UTC day of its target hours: ``{day: {contestant: mae}}``.

    What a contest's single month-long MAE hides: on which days one side won, so a person can see
    why a challenger won or lost (one bad day, or a steady edge).
    """
    days = pd.DatetimeIndex(target_time).strftime("%Y-%m-%d")
    actual_a = np.asarray(actual, dtype=float)
    errors = pd.DataFrame(
        {name: np.abs(np.asarray(values, dtype=float) - actual_a) for name, values in forecasts.items()},
        index=days,
    )
    means = errors.groupby(level=0, sort=True).mean()
    return {
        str(day): {str(name): float(value) for name, value in row.items()} for day, row in means.iterrows()
    }
