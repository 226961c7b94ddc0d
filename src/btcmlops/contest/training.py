"""Training one contestant on every sample up to the end of a month, and saying exactly on what."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from btcmlops.calendar import Month
from btcmlops.candles import CANDLE_VALUES, open_time_ns
from btcmlops.features import build_samples
from btcmlops.model import Forecaster, train_forecaster
from btcmlops.settings import ModelSettings
from btcmlops.training_window import TrainingWindow

Fitted = tuple[Forecaster, TrainingWindow, dict[str, float]]
"""A model trained through a month: the forecaster, its training window and its training metrics."""

Fit = Callable[[Month], Fitted]
"""Whatever hands the contest the model trained through a month (``Contest(fit=...)``): the replay's
executors fit every month ahead on other processes and hand each over when its month is closed."""


def candles_digest(candles: pd.DataFrame) -> str:
    """SHA-256 of the candles' times and values: two trainings with one digest saw the same data."""
    digest = hashlib.sha256()
    digest.update(open_time_ns(candles["open_time"]).tobytes())
    for column in CANDLE_VALUES:
        digest.update(candles[column].to_numpy(dtype=np.float64).tobytes())
    return digest.hexdigest()


def training_samples(samples: pd.DataFrame, through: Month, window_months: int = 0) -> pd.DataFrame:
    """Samples whose target hour is at or before the last hour of ``through``: every one (``window_months``
    0, an expanding window) or those of the last ``window_months`` months through it (a rolling window).

    The one rule of what a model trained through a month sees, for the replay and the live trainer alike
    (``ModelSettings.train_window_months``); the window only ever drops older hours, never adds later ones.
    """
    target = samples["target_time"]
    keep = target <= through.last_hour
    if window_months:
        keep &= target >= through.plus(1 - window_months).start
    return samples.loc[keep]


def month_samples(samples: pd.DataFrame, month: Month) -> pd.DataFrame:
    """Samples whose target hour falls in ``month`` (the hours a model is scored on)."""
    target = samples["target_time"]
    return samples.loc[(target >= month.start) & (target <= month.last_hour)]


def train_through(
    samples: pd.DataFrame, candles: pd.DataFrame, through: Month, config: ModelSettings
) -> Fitted:
    """Train on the samples up to the end of ``through`` (those of the last ``config.train_window_months``
    months, 0: every one); return the model, its window and metrics."""
    rows = training_samples(samples, through, config.train_window_months)
    if rows.empty:
        raise ValueError(f"no training samples through {through}")
    first, last = rows["target_time"].iloc[0], rows["target_time"].iloc[-1]
    seen = candles.loc[candles["open_time"] <= last]
    started = time.perf_counter()
    forecaster = train_forecaster(rows, config)
    seconds = time.perf_counter() - started
    in_sample = float(np.mean(np.abs(forecaster.predict_close(rows) - rows["actual_close"].to_numpy())))
    window = TrainingWindow(
        train_start=first,
        train_end=last,
        train_rows=len(rows),
        data_hash=candles_digest(seen),
        trained_through=str(through),
    )
    return forecaster, window, {"train_seconds": seconds, "in_sample_mae": in_sample}


def train_on_candles(candles: pd.DataFrame, through: Month, config: ModelSettings) -> Fitted:
    """Train through ``through`` from ``candles`` alone (every candle up to its last hour, as the contest
    reads them): the samples are built here, so a worker process needs nothing but the candles.

    The same features and fit as ``Contest`` makes when its month closes, so the model is the same
    wherever it is fitted. Importing this module pays for LightGBM and pandas, not for MLflow.
    """
    return train_through(build_samples(candles, config.feature_set), candles, through, config)
