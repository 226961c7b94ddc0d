"""The forecaster: deterministic, learns what is learnable, predicts prices from log returns."""

from __future__ import annotations

import numpy as np
import pytest

from btcmlops.features import build_samples, log_return_to_close
from btcmlops.model import train_forecaster
from btcmlops.settings import ModelSettings
from factories import make_candles

CONFIG = ModelSettings(num_boost_round=60, min_data_in_leaf=20)
FAMILIES = pytest.mark.parametrize(
    "config", [CONFIG, CONFIG.model_copy(update={"family": "xgboost"})], ids=["lightgbm", "xgboost"]
)


def test_same_data_same_settings_same_predictions() -> None:
    samples = build_samples(make_candles("2021-01-01", "2021-01-31 23:00", ar=0.5))
    first = train_forecaster(samples, CONFIG).predict_log_return(samples)
    second = train_forecaster(samples, CONFIG).predict_log_return(samples)
    np.testing.assert_array_equal(first, second)


@FAMILIES
def test_learns_a_predictable_market_better_than_naive(config: ModelSettings) -> None:
    """On a strongly autocorrelated series the model must beat 'next close = last close' out of sample."""
    samples = build_samples(make_candles("2021-01-01", "2021-03-31 23:00", ar=0.8))
    train, test = samples.iloc[:1500], samples.iloc[1500:]
    forecaster = train_forecaster(train, config)
    model_mae = np.mean(np.abs(forecaster.predict_close(test) - test["actual_close"]))
    naive_mae = np.mean(np.abs(test["close"] - test["actual_close"]))
    assert model_mae < 0.8 * naive_mae


def test_log_return_becomes_a_price() -> None:
    assert log_return_to_close([100.0], [np.log(1.1)])[0] == pytest.approx(110.0)


def test_refuses_to_train_on_nothing() -> None:
    samples = build_samples(make_candles("2021-01-01", "2021-01-05"))
    with pytest.raises(ValueError, match="zero samples"):
        train_forecaster(samples.iloc[:0], CONFIG)
