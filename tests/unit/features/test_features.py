"""Features: no look-ahead (nor in the forecast and intervals built on them), and no sample bridges a
missing hour."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from btcmlops.features import UnknownFeatureSetError, build_features, build_samples, get_feature_set
from btcmlops.model import naive_interval, train_forecaster
from btcmlops.settings import ModelSettings
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
