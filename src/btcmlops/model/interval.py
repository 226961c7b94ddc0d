"""The forecast's central interval: two quantile boosters, calibrated on the newest held-out month.

Why this method (conformalised quantile regression, scaled): hourly BTC is close to a random walk, so
the point forecast barely beats naive, but the *size* of the next move is predictable because
volatility clusters. Quantile boosters on the same features (recent returns, ranges, volatility) learn
that size; left alone they cover too few hours out of sample (about 73 % at a nominal 80 % on
2023-2024), because they fit the hours they were trained on. So they are fitted on every training hour
but the newest ``interval_calibration_hours``, and their interval is widened (or narrowed) on those held
out hours by the factor that makes exactly the level's share of them fall inside: the conformal score
of an hour is how far outside the raw interval its actual return fell, in units of the raw interval's
width, and the correction is that score's finite-sample quantile. The result depends on the training
hours only, so it is deterministic (live serves exactly the replay's interval) and uses nothing after
the version's training window.

The quantile boosters are LightGBM for every family: they are small (``interval_boost_round`` trees)
and fit on the CPU in a fraction of the point booster's time.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pandas as pd

from btcmlops.features.frame import TARGET_COLUMN
from btcmlops.model.params import lightgbm_params
from btcmlops.settings import ModelSettings

MIN_RELATIVE_WIDTH = 1e-5
"""Least width of an interval, as a log return (0.001 % of the price): lower stays below upper."""
LEAST_CORRECTION = -0.45
"""A narrowing correction stops short of -0.5, where an interval would shrink to its middle."""
LOWER_FILE = "lower.txt"
UPPER_FILE = "upper.txt"
CALIBRATION_FILE = "interval.json"


class IntervalError(ValueError):
    """An interval model that cannot answer: a bad level, or files that do not make an interval."""


@dataclass(frozen=True)
class Calibration:
    """How the raw quantile interval was corrected, on which hours, and what it covered before."""

    level: float
    correction: float
    """Each side moves out by ``correction`` times the raw width (in log return; negative: in)."""
    hours: int
    """Held-out hours the correction was computed on (0: too few training hours, no correction)."""
    raw_coverage: float
    """Share of the held-out hours the uncorrected interval covered (nan with no held-out hours)."""

    def as_dict(self) -> dict[str, float | int]:
        return {
            "level": self.level,
            "correction": self.correction,
            "hours": self.hours,
            "raw_coverage": self.raw_coverage,
        }


@dataclass(frozen=True)
class IntervalModel:
    """Two quantile boosters (the level's lower and upper tails) and their conformal correction."""

    lower: lgb.Booster
    upper: lgb.Booster
    calibration: Calibration

    @property
    def level(self) -> float:
        return self.calibration.level

    def predict_log_return(
        self, matrix: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """The interval of the log return from the close at T to the close at T + 1h, per row."""
        lower, upper = _raw(self.lower, self.upper, matrix)
        width = upper - lower
        shift = self.calibration.correction * width
        return lower - shift, upper + shift

    def save(self, directory: Path) -> None:
        """Write the boosters and the calibration into ``directory`` (inside the version's artifact)."""
        directory.mkdir(parents=True, exist_ok=True)
        self.lower.save_model(str(directory / LOWER_FILE))
        self.upper.save_model(str(directory / UPPER_FILE))
        (directory / CALIBRATION_FILE).write_text(json.dumps(self.calibration.as_dict()))

    @classmethod
    def load(cls, directory: Path) -> IntervalModel:
        """Read what ``save`` wrote; a missing or malformed file is an ``IntervalError`` naming it."""
        try:
            data = json.loads((directory / CALIBRATION_FILE).read_text())
            calibration = Calibration(
                level=float(data["level"]),
                correction=float(data["correction"]),
                hours=int(data["hours"]),
                raw_coverage=float(data["raw_coverage"]),
            )
            lower = lgb.Booster(model_file=str(directory / LOWER_FILE))
            upper = lgb.Booster(model_file=str(directory / UPPER_FILE))
        except (OSError, ValueError, KeyError, TypeError, lgb.basic.LightGBMError) as error:
            raise IntervalError(f"interval files in {directory.name!r} cannot be read: {error}") from error
        return cls(lower=lower, upper=upper, calibration=calibration)


def quantile_params(config: ModelSettings, alpha: float) -> dict[str, Any]:
    """LightGBM parameters of one tail's booster: the point booster's trees, a quantile objective."""
    return {
        **lightgbm_params(config),
        "objective": "quantile",
        "alpha": alpha,
        "learning_rate": config.interval_learning_rate,
    }


def calibration_hours(rows: int, config: ModelSettings) -> int:
    """Held-out hours for ``rows`` training samples: the setting, but never more than a third of them."""
    return min(config.interval_calibration_hours, rows // 3)


def train_interval(samples: pd.DataFrame, columns: list[str], config: ModelSettings) -> IntervalModel:
    """Fit the interval on ``samples`` (time-ordered rows of ``build_samples``, the point's window).

    The newest ``calibration_hours`` rows are held out of the boosters and calibrate them.
    """
    if samples.empty:
        raise ValueError("cannot train an interval on zero samples")
    matrix = samples.loc[:, columns].to_numpy(dtype=np.float64)
    label = samples[TARGET_COLUMN].to_numpy(dtype=np.float64)
    held_out = calibration_hours(len(samples), config)
    fit_rows = len(samples) - held_out
    tail = (1.0 - config.interval_level) / 2.0
    # One binned dataset for both tails: the same rows, labels and binning; only the objective differs,
    # and a constructed Dataset is reused as is (the boosters are the same as from two, byte for byte).
    dataset = lgb.Dataset(matrix[:fit_rows], label=label[:fit_rows], feature_name=columns, free_raw_data=True)
    boosters = [
        lgb.train(quantile_params(config, alpha), dataset, num_boost_round=config.interval_boost_round)
        for alpha in (tail, 1.0 - tail)
    ]
    calibration = calibrate(
        boosters[0], boosters[1], matrix[fit_rows:], label[fit_rows:], config.interval_level
    )
    return IntervalModel(lower=boosters[0], upper=boosters[1], calibration=calibration)


def calibrate(
    lower: lgb.Booster,
    upper: lgb.Booster,
    matrix: npt.NDArray[np.float64],
    label: npt.NDArray[np.float64],
    level: float,
) -> Calibration:
    """The correction that makes ``level`` of the held-out hours fall inside (split conformal).

    The score of an hour is ``max(lower - y, y - upper) / width``: negative inside the raw interval,
    positive outside. Its ``ceil((n + 1) * level) / n`` empirical quantile is the correction, the
    finite-sample rule that guarantees at least ``level`` coverage on exchangeable hours.
    """
    if len(label) == 0:
        return Calibration(level=level, correction=0.0, hours=0, raw_coverage=math.nan)
    low, high = _raw(lower, upper, matrix)
    width = high - low
    scores = np.maximum((low - label) / width, (label - high) / width)
    rank = min(1.0, math.ceil((len(label) + 1) * level) / len(label))
    correction = max(LEAST_CORRECTION, float(np.quantile(scores, rank, method="higher")))
    return Calibration(
        level=level,
        correction=correction,
        hours=len(label),
        raw_coverage=float(np.mean(scores <= 0)),
    )


def _raw(
    lower: lgb.Booster, upper: lgb.Booster, matrix: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The boosters' interval, put in order (two quantile fits can cross) and at least the least width."""
    a = np.asarray(lower.predict(matrix), dtype=np.float64)
    b = np.asarray(upper.predict(matrix), dtype=np.float64)
    low, high = np.minimum(a, b), np.maximum(a, b)
    middle = (low + high) / 2.0
    half = np.maximum(high - low, MIN_RELATIVE_WIDTH) / 2.0
    return middle - half, middle + half
