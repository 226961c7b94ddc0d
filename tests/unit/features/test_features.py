"""Features: no look-ahead (nor in the forecast and intervals built on them), and no sample bridges a
missing hour."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from btcmlops.data import read_candle_file
from btcmlops.features import (
    UnknownFeatureSetError,
    build_features,
    build_samples,
    feature_matrix,
    get_feature_set,
)
from btcmlops.model import naive_interval, train_forecaster
from btcmlops.settings import EMBEDDED_DATA_FILE, ModelSettings
from factories import make_candles

CANDLES = make_candles("2021-01-01", "2021-01-20 23:00", ar=0.3)
FORECASTER = train_forecaster(build_samples(CANDLES), ModelSettings(num_boost_round=20, min_data_in_leaf=20))


@settings(max_examples=40, deadline=None)
@given(
    t_index=st.integers(min_value=30, max_value=len(CANDLES) - 2),
    offset=st.integers(min_value=1, max_value=200),
    factor=st.floats(min_value=0.5, max_value=2.0),
    column=st.sampled_from(["open", "high", "low", "close", "volume"]),
)
def test_changing_any_later_candle_leaves_features_prediction_and_intervals_unchanged(
    t_index: int, offset: int, factor: float, column: str
) -> None:
    later = min(t_index + offset, len(CANDLES) - 1)
    changed = CANDLES.copy()
    changed.loc[later:, column] *= factor  # everything from `later` on moves
    t = CANDLES["open_time"].iloc[t_index]

    before = build_features(CANDLES).loc[[t]]
    after = build_features(changed).loc[[t]]

    pd.testing.assert_frame_equal(before, after)
    assert FORECASTER.predict_close(before)[0] == FORECASTER.predict_close(after)[0]
    # The served interval (the version's) and naive's: nothing after T moves them either.
    assert _bounds(FORECASTER.predict_interval(before)) == _bounds(FORECASTER.predict_interval(after))
    at = pd.DatetimeIndex([t])
    assert _bounds(naive_interval(CANDLES, at, 0.8)) == _bounds(naive_interval(changed, at, 0.8))


def _bounds(interval: tuple[np.ndarray, np.ndarray]) -> tuple[float, float]:
    lower, upper = interval
    assert np.isfinite(lower[0])  # not vacuous: an interval to compare
    assert np.isfinite(upper[0])
    assert lower[0] < upper[0]
    return float(lower[0]), float(upper[0])


def test_changing_the_candle_at_t_does_change_the_features() -> None:
    """The property above is not vacuous: the features do read the candle at T."""
    t_index = 100
    changed = CANDLES.copy()
    changed.loc[t_index, "close"] *= 1.01
    t = CANDLES["open_time"].iloc[t_index]
    assert not build_features(CANDLES).loc[t].equals(build_features(changed).loc[t])
    before, after = build_features(CANDLES).loc[[t]], build_features(changed).loc[[t]]
    assert _bounds(FORECASTER.predict_interval(before)) != _bounds(FORECASTER.predict_interval(after))
    at = pd.DatetimeIndex([t])
    assert _bounds(naive_interval(CANDLES, at, 0.8)) != _bounds(naive_interval(changed, at, 0.8))


def test_samples_next_to_a_gap_are_dropped_not_bridged() -> None:
    gap = "2021-01-10 12:00"
    candles = make_candles("2021-01-01", "2021-01-20 23:00", drop=(gap,))
    samples = build_samples(candles)
    window = get_feature_set("v1").window_hours
    missing = pd.Timestamp(gap, tz="UTC")
    hour = pd.Timedelta(hours=1)

    # T = gap - 1h: its target (the missing hour) does not exist, so no sample.
    assert missing - hour not in samples.index
    # T from the gap to gap + (window - 1)h: the window would contain the missing hour.
    for k in range(window):
        assert missing + k * hour not in samples.index
    # The first T whose window is all real hours again, and the last one before the gap, are kept.
    assert missing + window * hour in samples.index
    assert missing - 2 * hour in samples.index
    assert (samples["target_time"] - samples.index == hour).all()


def test_the_shipped_halt_gap_drops_exactly_the_hours_that_touch_it() -> None:
    from btcmlops.settings import EMBEDDED_DATA_FILE

    candles = pd.read_csv(EMBEDDED_DATA_FILE)
    candles["open_time"] = pd.to_datetime(candles["open_time"], utc=True)
    samples = build_samples(candles)
    march = samples.loc["2023-03-23":"2023-03-26"].index
    dropped = pd.date_range("2023-03-24 12:00", "2023-03-25 13:00", freq="h", tz="UTC")
    assert not march.isin(dropped).any()
    assert pd.Timestamp("2023-03-24 11:00", tz="UTC") in march
    assert pd.Timestamp("2023-03-25 14:00", tz="UTC") in march
    # 17,543 candles; 24 hours of history at the start, the last hour has no target, 26 touch the gap.
    assert len(samples) == 17_543 - 24 - 1 - 25


def test_target_is_the_log_return_to_the_next_close() -> None:
    samples = build_samples(CANDLES)
    closes = CANDLES.set_index("open_time")["close"]
    row = samples.iloc[10]
    assert row["actual_close"] == closes[row["target_time"]]
    assert row["target_log_return"] == pytest.approx(np.log(closes[row["target_time"]] / row["close"]))


def test_unknown_feature_set_is_refused_by_name() -> None:
    with pytest.raises(UnknownFeatureSetError, match=r"'v9'.*known: v1"):
        build_features(CANDLES, "v9")


def _bits(matrix: np.ndarray) -> np.ndarray:
    """The float64 bits, every NaN as one pattern: equal bits, not only equal values (-0.0 != 0.0)."""
    return np.where(np.isnan(matrix), np.nan, matrix).view(np.int64)


def _pandas_v1(candles: pd.DataFrame) -> np.ndarray:
    """Feature set v1 written with pandas' Series (shift, diff, rolling), as the project computed it
    before ``_v1`` moved to numpy: a row per candle, NaN where its window is short or not consecutive."""
    open_, high, low, close, volume = (
        candles[name].astype(float) for name in ("open", "high", "low", "close", "volume")
    )
    log_close = np.log(close)
    ret = log_close.diff()
    log_volume = np.log1p(volume)
    hour = candles["open_time"].dt.hour.to_numpy()
    dow = candles["open_time"].dt.day_of_week.to_numpy()
    columns = {
        "ret_1": ret,
        "ret_2": ret.shift(1),
        "ret_3": ret.shift(2),
        "mom_6": log_close - log_close.shift(6),
        "mom_12": log_close - log_close.shift(12),
        "mom_24": log_close - log_close.shift(24),
        "vol_6": ret.rolling(6).std(),
        "vol_24": ret.rolling(24).std(),
        "range_1": np.log(high / low),
        "range_24": np.log(high / low).rolling(24).mean(),
        "body_1": np.log(close / open_),
        "upper_wick_1": np.log(high / np.maximum(open_, close)),
        "lower_wick_1": np.log(np.minimum(open_, close) / low),
        "dist_ma_24": log_close - np.log(close.rolling(24).mean()),
        "volume_ratio_24": log_volume - log_volume.rolling(24).mean(),
        "hour_sin": np.sin(2 * np.pi * hour / 24),
        "hour_cos": np.cos(2 * np.pi * hour / 24),
        "dow_sin": np.sin(2 * np.pi * dow / 7),
        "dow_cos": np.cos(2 * np.pi * dow / 7),
    }
    spec = get_feature_set("v1")
    matrix = np.column_stack([np.asarray(columns[name], dtype=np.float64) for name in spec.columns])
    hours = candles["open_time"].to_numpy(dtype="datetime64[ns]").astype(np.int64) // 3_600_000_000_000
    window = spec.window_hours
    consecutive = np.zeros(len(candles), dtype=bool)
    if len(candles) >= window:
        consecutive[window - 1 :] = hours[window - 1 :] - hours[: len(hours) - window + 1] == window - 1
    matrix[~consecutive] = np.nan
    return matrix


def _expected(candles: pd.DataFrame) -> np.ndarray:
    """``build_features`` as a row per candle, NaN where the candle has no features."""
    built = build_features(candles)
    expected = np.full((len(candles), len(get_feature_set("v1").columns)), np.nan)
    rows = pd.DatetimeIndex(candles["open_time"]).get_indexer(built.index)
    expected[rows] = built.loc[:, list(get_feature_set("v1").columns)].to_numpy()
    return expected


def _matrix(candles: pd.DataFrame) -> np.ndarray:
    hours = candles["open_time"].to_numpy(dtype="datetime64[ns]").astype(np.int64) // 3_600_000_000_000
    values = candles.loc[:, ["open", "high", "low", "close", "volume"]].to_numpy(dtype=np.float64)
    return feature_matrix(hours, values)


def test_the_services_feature_matrix_is_build_features_bit_for_bit() -> None:
    """The service's features (``feature_matrix``) are the training features (``build_features``), and
    both are pandas' Series arithmetic to the last bit (the features every model so far was trained on):
    over the shipped candles with their halt gap and gaps cut here, and over the few rows a service builds
    each hour (the 24 candles of history and one to three new ones)."""
    shipped = read_candle_file(EMBEDDED_DATA_FILE).candles
    cut = shipped.drop(index=[40, 41, 300, 777]).reset_index(drop=True)
    for candles in (shipped, cut, CANDLES):
        matrix = _matrix(candles)
        assert np.isnan(matrix).all(axis=1).sum() >= 24  # the history (and gaps) leave rows without
        np.testing.assert_array_equal(_bits(matrix), _bits(_expected(candles)))
        np.testing.assert_array_equal(_bits(matrix), _bits(_pandas_v1(candles)))
    for end in range(25, 400, 7):
        rows = cut.iloc[end - 25 - end % 3 : end].reset_index(drop=True)
        np.testing.assert_array_equal(_bits(_matrix(rows)), _bits(_expected(rows)))
        np.testing.assert_array_equal(_bits(_matrix(rows)), _bits(_pandas_v1(rows)))
    assert _matrix(CANDLES.iloc[:0]).shape == (0, len(get_feature_set("v1").columns))
