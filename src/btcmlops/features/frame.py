"""Feature set ``v1``: recent log returns, momentum, volatility, candle shape, volume and calendar.

Everything is computed with trailing (backward-looking) windows over the candle rows, then rows whose
window is not made of consecutive hours are masked out. Trailing windows over rows ordered by time can
only see rows at or before the current one, which is why computing the features once over a long
history gives exactly the features a live server would compute for the same hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas._libs.window import aggregations as _window_kernels  # type: ignore[attr-defined]

from btcmlops.candles import candle_values, hour_index

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


def _window_is_contiguous(hours: npt.NDArray[np.int64], window: int) -> npt.NDArray[np.bool_]:
    """True where the ``window`` rows ending at each row are consecutive hours."""
    ok = np.zeros(len(hours), dtype=bool)
    if len(hours) >= window:
        span = hours[window - 1 :] - hours[: len(hours) - window + 1]
        ok[window - 1 :] = span == window - 1
    return ok


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
    hours = hour_index(candles["open_time"])
    columns = _v1(hours, candle_values(candles))
    values = pd.DataFrame(
        {name: columns[name] for name in spec.columns},
        index=pd.DatetimeIndex(candles["open_time"], name="open_time"),
    )
    values["close"] = candles["close"].to_numpy(dtype=np.float64)
    return values.loc[_window_is_contiguous(hours, spec.window_hours)]


def _shifted(values: npt.NDArray[np.float64], periods: int) -> npt.NDArray[np.float64]:
    """``Series.shift(periods)``: ``periods`` NaNs first."""
    out = np.full(len(values), np.nan)
    out[periods:] = values[: len(values) - periods]
    return out


def _rolling(
    values: npt.NDArray[np.float64], window: int, how: Literal["mean", "std"]
) -> npt.NDArray[np.float64]:
    """``Series.rolling(window).mean()`` (``how="mean"``) or ``.std()`` (``"std"``) without a Series.

    The very kernels pandas runs (on the same bounds, infinities made NaN as pandas does), so every bit
    agrees with ``Series.rolling``'s.
    """
    if not len(values):
        return values.copy()
    inf = np.isinf(values)
    if inf.any():
        values = np.where(inf, np.nan, values)
    end = np.arange(1, len(values) + 1, dtype=np.int64)
    start = np.clip(end - window, 0, len(values))
    with np.errstate(all="ignore"):
        if how == "mean":
            return np.asarray(_window_kernels.roll_mean(values, start, end, window), dtype=np.float64)
        variance = np.asarray(_window_kernels.roll_var(values, start, end, window, ddof=1), dtype=np.float64)
        deviation = np.sqrt(variance)
        deviation[variance < 0] = 0  # pandas' zsqrt
        return deviation


def _v1(hours: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> dict[str, npt.NDArray[np.float64]]:
    """Feature set v1's columns, one value per candle (NaN where its history is short): the one rule,
    for training (``build_features``) and for the service's new candles (``feature_matrix``).

    ``hours``: each candle's hour since the epoch; ``values``: open, high, low, close and volume. Shifts
    and rolling windows count rows, as pandas' do (``build_features`` drops the rows whose window is not
    consecutive hours); the rolling means and deviations are pandas' own kernels, so the numbers are
    those of ``Series.rolling`` to the bit (``tests/unit/features/test_features.py`` holds them to it).
    """
    open_, high, low, close, volume = (np.ascontiguousarray(values[:, i], dtype=np.float64) for i in range(5))
    with np.errstate(all="ignore"):
        log_close = np.log(close)
        ret = log_close - _shifted(log_close, 1)
        log_volume = np.log1p(volume)
        log_range = np.log(high / low)
        hour = hours % 24
        dow = (hours // 24 + 3) % 7  # 1970-01-01 was a Thursday (Monday is 0)
        return {
            "ret_1": ret,
            "ret_2": _shifted(ret, 1),
            "ret_3": _shifted(ret, 2),
            "mom_6": log_close - _shifted(log_close, 6),
            "mom_12": log_close - _shifted(log_close, 12),
            "mom_24": log_close - _shifted(log_close, 24),
            "vol_6": _rolling(ret, 6, "std"),
            "vol_24": _rolling(ret, 24, "std"),
            "range_1": log_range,
            "range_24": _rolling(log_range, 24, "mean"),
            "body_1": np.log(close / open_),
            "upper_wick_1": np.log(high / np.maximum(open_, close)),
            "lower_wick_1": np.log(np.minimum(open_, close) / low),
            "dist_ma_24": log_close - np.log(_rolling(close, 24, "mean")),
            "volume_ratio_24": log_volume - _rolling(log_volume, 24, "mean"),
            "hour_sin": np.sin(2 * np.pi * hour / 24),
            "hour_cos": np.cos(2 * np.pi * hour / 24),
            "dow_sin": np.sin(2 * np.pi * dow / 7),
            "dow_cos": np.cos(2 * np.pi * dow / 7),
        }


def feature_matrix(
    hours: npt.NDArray[np.int64], values: npt.NDArray[np.float64], feature_set: str = "v1"
) -> npt.NDArray[np.float64]:
    """``build_features`` for a service's few new candles, in numpy: a row per candle, NaN where it has none.

    ``hours``: each candle's hour (whole hours since the epoch, ascending); ``values``: its open, high,
    low, close and volume (one row per candle). The same columns as ``build_features`` (both are
    ``_v1``'s) without its frames, which on a few dozen rows cost ten times the numbers: the service adds
    one candle each sim hour, and those frames were a quarter of its CPU per hour.
    """
    spec = get_feature_set(feature_set)
    columns = _v1(hours, values)
    matrix = (
        np.column_stack([columns[name] for name in spec.columns])
        if len(hours)
        else np.empty((0, len(spec.columns)))
    )
    matrix[~_window_is_contiguous(hours, spec.window_hours)] = np.nan
    return matrix


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
