"""The training window (``ModelSettings.train_window_months``): expanding, or the last N months through
the month trained through; never an hour after it."""

from __future__ import annotations

import pandas as pd
import pytest

from btcmlops.contest import Month
from btcmlops.contest.training import train_through, training_samples
from btcmlops.features import build_samples
from btcmlops.settings import ModelSettings
from factories import make_candles

CANDLES = make_candles("2021-01-01", "2021-05-31 23:00")


@pytest.fixture(scope="module")
def samples() -> pd.DataFrame:
    return build_samples(CANDLES, "v1")


@pytest.mark.parametrize(("window", "first"), [(0, "2021-01-02 01:00"), (1, "2021-04-01"), (2, "2021-03-01")])
def test_a_window_keeps_the_last_months_through_the_month_and_nothing_after(
    samples: pd.DataFrame, window: int, first: str
) -> None:
    through = Month(2021, 4)
    rows = training_samples(samples, through, window)
    assert rows["target_time"].min() == pd.Timestamp(first, tz="UTC")
    assert rows["target_time"].max() == through.last_hour
    # Every sample in the window is kept: the rolling window is the expanding one's tail.
    expanding = training_samples(samples, through)
    assert rows.equals(expanding.loc[expanding["target_time"] >= rows["target_time"].min()])


def test_a_fit_on_a_rolling_window_says_so_in_its_training_window(samples: pd.DataFrame) -> None:
    config = ModelSettings(num_boost_round=5, min_data_in_leaf=20, train_window_months=1)
    _, window, _ = train_through(samples, CANDLES, Month(2021, 3), config)
    assert window.train_start == pd.Timestamp("2021-03-01", tz="UTC")
    assert window.train_end == Month(2021, 3).last_hour
    assert window.train_rows == len(training_samples(samples, Month(2021, 3), 1))
