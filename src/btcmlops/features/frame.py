"""Feature set ``v1``: recent log returns, momentum, volatility, candle shape, volume and calendar.

Everything is computed with trailing (backward-looking) windows over the candle rows, then rows whose
window is not made of consecutive hours are masked out. Trailing windows over rows ordered by time can
only see rows at or before the current one, which is why computing the features once over a long
history gives exactly the features a live server would compute for the same hour.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

HOUR = pd.Timedelta(hours=1)
TARGET_COLUMN = "target_log_return"


class UnknownFeatureSetError(ValueError):
    """A model or a setting names a feature set this code does not know how to build."""


@dataclass(frozen=True)
class FeatureSet:
    """A named, versioned list of features and the history each sample needs."""

    name: str
    columns: tuple[str, ...]
    window_hours: int
    """Candles a sample needs: hours T - window_hours + 1 .. T, all present."""


_V1_COLUMNS = (
    "ret_1",
    "ret_2",
    "ret_3",
    "mom_6",
    "mom_12",
    "mom_24",
    "vol_6",
    "vol_24",
    "range_1",
    "range_24",
    "body_1",
    "upper_wick_1",
    "lower_wick_1",
    "dist_ma_24",
    "volume_ratio_24",
    "hour_sin",
    "hour_cos",
    "dow_sin",
    "dow_cos",
)

FEATURE_SETS: dict[str, FeatureSet] = {"v1": FeatureSet(name="v1", columns=_V1_COLUMNS, window_hours=25)}


def get_feature_set(name: str) -> FeatureSet:
    """Return the feature set called ``name``, or refuse with the names that are known."""
    try:
        return FEATURE_SETS[name]
    except KeyError:
        known = ", ".join(sorted(FEATURE_SETS))
        raise UnknownFeatureSetError(f"unknown feature set {name!r} (known: {known})") from None


def _hour_index(open_time: pd.Series) -> npt.NDArray[np.int64]:
    """Whole hours since the epoch: consecutive candles differ by exactly one."""
    ns = open_time.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    return ns // np.int64(3_600_000_000_000)


def _window_is_contiguous(hours: npt.NDArray[np.int64], window: int) -> npt.NDArray[np.bool_]:
    """True where the ``window`` rows ending at each row are consecutive hours."""
    ok = np.zeros(len(hours), dtype=bool)
    if len(hours) >= window:
        span = hours[window - 1 :] - hours[: len(hours) - window + 1]
        ok[window - 1 :] = span == window - 1
    return ok


def _log(series: pd.Series) -> pd.Series:
    return pd.Series(np.log(series.to_numpy(dtype=np.float64)), index=series.index)


def _v1(candles: pd.DataFrame) -> pd.DataFrame:
    open_ = candles["open"].astype(float)
    high = candles["high"].astype(float)
    low = candles["low"].astype(float)
    close = candles["close"].astype(float)
    volume = candles["volume"].astype(float)
    log_close = _log(close)
    ret = log_close.diff()
    top = np.maximum(open_, close)
    bottom = np.minimum(open_, close)
    log_volume = pd.Series(np.log1p(volume.to_numpy()), index=volume.index)
    hour = candles["open_time"].dt.hour.to_numpy()
    dow = candles["open_time"].dt.day_of_week.to_numpy()
    features = {
        "ret_1": ret,
        "ret_2": ret.shift(1),
        "ret_3": ret.shift(2),
        "mom_6": log_close - log_close.shift(6),
        "mom_12": log_close - log_close.shift(12),
        "mom_24": log_close - log_close.shift(24),
        "vol_6": ret.rolling(6).std(),
        "vol_24": ret.rolling(24).std(),
        "range_1": np.log(high / low),
        "range_24": _log(high / low).rolling(24).mean(),
        "body_1": np.log(close / open_),
        "upper_wick_1": np.log(high / top),
        "lower_wick_1": np.log(bottom / low),
        "dist_ma_24": log_close - _log(close.rolling(24).mean()),
        "volume_ratio_24": log_volume - log_volume.rolling(24).mean(),
        "hour_sin": np.sin(2 * np.pi * hour / 24),
        "hour_cos": np.cos(2 * np.pi * hour / 24),
        "dow_sin": np.sin(2 * np.pi * dow / 7),
        "dow_cos": np.cos(2 * np.pi * dow / 7),
    }
    return pd.DataFrame(features, index=candles.index)


def build_features(candles: pd.DataFrame, feature_set: str = "v1") -> pd.DataFrame:
    """Build one row of features per hour T whose whole window of past candles exists.

    Args:
        candles: canonical candles (``open_time`` tz-aware UTC, ascending, unique, OHLCV floats).
        feature_set: name of the feature set; a model logs it so a server can refuse unknown ones.

    Returns:
        A frame indexed by ``open_time`` (hour T) with the feature set's columns and a ``close``
        column (the close at T, from which a predicted log return becomes a price). Hours whose window
        crosses a missing hour, or that lack history, are absent.
    """
    spec = get_feature_set(feature_set)
    candles = candles.reset_index(drop=True)
    values = _v1(candles)[list(spec.columns)]
    contiguous = _window_is_contiguous(_hour_index(candles["open_time"]), spec.window_hours)
    values["close"] = candles["close"].astype(float)
    values.index = pd.DatetimeIndex(candles["open_time"], name="open_time")
    return values.loc[contiguous]


def build_samples(candles: pd.DataFrame, feature_set: str = "v1") -> pd.DataFrame:
    """Build training and scoring samples: features of hour T plus what happened at T + 1h.

    A sample exists only where hour T has its features and the candle of T + 1h exists (a target that
    would bridge a missing hour is dropped). Columns added: ``target_time`` (T + 1h),
    ``actual_close`` (close at T + 1h) and ``target_log_return`` (log of actual_close / close at T).
    """
    features = build_features(candles, feature_set)
    closes = pd.Series(
        candles["close"].astype(float).to_numpy(), index=pd.DatetimeIndex(candles["open_time"])
    )
    target_time = pd.DatetimeIndex(features.index) + HOUR
    actual = closes.reindex(target_time).to_numpy()
    samples = features.assign(target_time=target_time, actual_close=actual)
    samples = samples.loc[~np.isnan(actual)]
    samples[TARGET_COLUMN] = np.log(samples["actual_close"] / samples["close"])
    return samples


def log_return_to_close(last_close: npt.ArrayLike, log_return: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Turn a predicted log return from the close at T into a predicted close at T + 1h."""
    close: npt.NDArray[np.float64] = np.asarray(last_close, dtype=np.float64) * np.exp(
        np.asarray(log_return, dtype=np.float64)
    )
    return close
