"""Training one contestant on every sample up to the end of a month, and saying exactly on what."""

from __future__ import annotations

import hashlib
import time

import numpy as np
import pandas as pd

from btcmlops.calendar import Month
from btcmlops.model import Forecaster, train_forecaster
from btcmlops.settings import ModelSettings
from btcmlops.training_window import TrainingWindow


def candles_digest(candles: pd.DataFrame) -> str:
    """SHA-256 of the candles' times and values: two trainings with one digest saw the same data."""
    digest = hashlib.sha256()
    digest.update(candles["open_time"].to_numpy(dtype="datetime64[ns]").astype(np.int64).tobytes())
    for column in ("open", "high", "low", "close", "volume"):
        digest.update(candles[column].to_numpy(dtype=np.float64).tobytes())
    return digest.hexdigest()


def training_samples(samples: pd.DataFrame, through: Month) -> pd.DataFrame:
    """Samples whose target hour is at or before the last hour of ``through``."""
    return samples.loc[samples["target_time"] <= through.last_hour]


def month_samples(samples: pd.DataFrame, month: Month) -> pd.DataFrame:
    """Samples whose target hour falls in ``month`` (the hours a model is scored on)."""
    target = samples["target_time"]
    return samples.loc[(target >= month.start) & (target <= month.last_hour)]


def train_through(
    samples: pd.DataFrame, candles: pd.DataFrame, through: Month, config: ModelSettings
) -> tuple[Forecaster, TrainingWindow, dict[str, float]]:
    """Train on every sample up to the end of ``through``; return the model, its window and metrics."""
    rows = training_samples(samples, through)
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
