"""Scores of a set of forecasts against what happened: MAE, RMSE, MAPE and directional accuracy."""

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
        mae=float(np.mean(np.abs(error))),
        rmse=float(np.sqrt(np.mean(error**2))),
        mape=float(np.mean(np.abs(error) / actual_a)),
        directional_accuracy=float(np.mean((called == moved) & (called != 0))),
    )


def skill(model_mae: float, naive_mae: float) -> float:
    """Skill against naive: 1 - MAE / naive MAE (0: as good as naive; > 0: better)."""
    return 1.0 - model_mae / naive_mae


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
