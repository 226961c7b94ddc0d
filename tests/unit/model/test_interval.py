"""The forecast's interval: calibrated out of sample, sharper than naive where volatility clusters,
deterministic, always ordered, and kept whole in a version's artifact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from btcmlops.contest.scoring import score_interval
from btcmlops.features import build_samples, get_feature_set
from btcmlops.model import IntervalError, IntervalModel, naive_interval, train_forecaster
from btcmlops.model.interval import calibration_hours
from btcmlops.settings import ModelSettings, Settings

CONFIG = ModelSettings(num_boost_round=30, interval_boost_round=60, min_data_in_leaf=40)
COLUMNS = list(get_feature_set(CONFIG.feature_set).columns)


def clustered_candles(start: str, hours: int, *, seed: int = 3) -> pd.DataFrame:
    """Candles whose hourly moves switch between a calm and a wild regime lasting days at a time.

    The size of the next move is predictable from the last day's moves and ranges (as in BTC), its
    direction is not: a model can know its uncertainty and nothing else.
    """
    rng = np.random.default_rng(seed)
    times = pd.date_range(pd.Timestamp(start, tz="UTC"), periods=hours, freq="h")
    regime = np.repeat(rng.choice([0.001, 0.005], size=hours // 72 + 1), 72)[:hours]
    returns = rng.standard_t(5, hours) / np.sqrt(5 / 3) * regime
    close = 30_000.0 * np.exp(np.cumsum(returns))
    open_ = np.concatenate([[close[0]], close[:-1]])
    wick = np.abs(rng.normal(0.0, regime / 2))
    return pd.DataFrame(
        {
            "open_time": times,
            "open": open_,
            "high": np.maximum(open_, close) * (1 + wick),
            "low": np.minimum(open_, close) * (1 - wick),
            "close": close,
            "volume": rng.uniform(50, 150, hours),
        }
    )


@pytest.fixture(scope="module")
def market() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    candles = clustered_candles("2021-01-01", 24 * 200)
    samples = build_samples(candles)
    split = samples.index[int(len(samples) * 0.7)]
    return candles, samples.loc[samples.index < split], samples.loc[samples.index >= split]


@pytest.mark.parametrize("level", [0.8, 0.9])
def test_out_of_sample_coverage_is_the_level_and_beats_naive(
    market: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame], level: float
) -> None:
    candles, train, test = market
    forecaster = train_forecaster(train, CONFIG.model_copy(update={"interval_level": level}))
    lower, upper = forecaster.predict_interval(test)
    served = score_interval(test["actual_close"], lower, upper, level)
    naive_lower, naive_upper = naive_interval(candles, test.index, level)
    naive = score_interval(test["actual_close"], naive_lower, naive_upper, level)

    assert forecaster.interval_level == level
    assert served.coverage == pytest.approx(level, abs=0.04)
    # It knows when the market is calm: a better interval score than the last month's quantiles.
    assert served.interval_score < 0.9 * naive.interval_score
    # And the correction did work: the raw quantile boosters were off on the held-out hours.
    calibration = forecaster.interval.calibration  # type: ignore[union-attr]
    assert calibration.hours == CONFIG.interval_calibration_hours
    assert calibration.correction != 0.0


def test_the_interval_is_wider_in_wild_hours_than_in_calm_ones(
    market: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    _candles, train, test = market
    forecaster = train_forecaster(train, CONFIG)
    lower, upper = forecaster.predict_interval(test)
    width = (upper - lower) / test["close"].to_numpy()
    wild = test["vol_24"].to_numpy() > np.median(test["vol_24"])
    assert np.median(width[wild]) > 2 * np.median(width[~wild])


def test_same_data_same_interval_and_always_ordered(
    market: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    _candles, train, test = market
    first = train_forecaster(train, CONFIG).predict_interval(test)
    second = train_forecaster(train, CONFIG).predict_interval(test)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    lower, upper = first
    assert np.all(np.isfinite(lower))
    assert np.all(lower < upper)


def test_the_newest_hours_calibrate_and_are_never_more_than_a_third() -> None:
    assert calibration_hours(10_000, CONFIG) == 720
    assert calibration_hours(900, CONFIG) == 300
    assert calibration_hours(2, CONFIG) == 0


def test_saved_and_loaded_it_answers_the_same(
    market: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    _candles, train, test = market
    interval = train_forecaster(train, CONFIG).interval
    assert interval is not None
    interval.save(tmp_path / "interval")
    loaded = IntervalModel.load(tmp_path / "interval")
    matrix = test.loc[:, COLUMNS].to_numpy(dtype=np.float64)
    for got, want in zip(loaded.predict_log_return(matrix), interval.predict_log_return(matrix), strict=True):
        np.testing.assert_array_equal(got, want)
    assert loaded.calibration == interval.calibration

    (tmp_path / "interval" / "interval.json").write_text('{"level": 0.8}')
    with pytest.raises(IntervalError, match="interval files in 'interval' cannot be read"):
        IntervalModel.load(tmp_path / "interval")


@pytest.mark.parametrize("level", [0.3, 0.49, 0.995, 1.0])
def test_a_level_outside_half_to_99_percent_is_refused_naming_the_setting(
    level: float, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError, match="interval_level"):
        ModelSettings(interval_level=level)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BTCMLOPS_MODEL__INTERVAL_LEVEL", str(level))
    with pytest.raises(ValidationError, match=r"model\.interval_level"):
        Settings()
