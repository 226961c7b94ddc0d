"""Naive's interval: the trailing 30 days' hourly return quantiles on the last close, exactly as
docs/forecasting.md states the rule, with nothing after the hour."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from btcmlops.model import naive_close, naive_interval
from btcmlops.model.naive import NAIVE_LEAST_RETURNS, NAIVE_WINDOW_HOURS
from factories import make_candles


def test_the_rule_by_hand() -> None:
    candles = make_candles("2021-01-01", "2021-03-01", noise=0.01)
    hour = pd.Timestamp("2021-02-20 13:00", tz="UTC")
    lower, upper = naive_interval(candles, pd.DatetimeIndex([hour]), 0.8)

    closes = candles.set_index("open_time")["close"]
    window = closes.loc[hour - pd.Timedelta(hours=NAIVE_WINDOW_HOURS) : hour]  # 721 closes, 720 returns
    returns = np.diff(np.log(window.to_numpy()))
    assert len(returns) == NAIVE_WINDOW_HOURS
    assert lower[0] == pytest.approx(closes[hour] * np.exp(np.quantile(returns, 0.1)), rel=1e-12)
    assert upper[0] == pytest.approx(closes[hour] * np.exp(np.quantile(returns, 0.9)), rel=1e-12)
    assert naive_close([closes[hour]])[0] == closes[hour]


def test_a_gap_is_skipped_never_bridged_and_too_few_returns_give_none() -> None:
    gap = "2021-01-01 05:00"
    candles = make_candles("2021-01-01", "2021-01-03", noise=0.01, drop=(gap,))
    hours = pd.DatetimeIndex(candles["open_time"])
    lower, _upper = naive_interval(candles, hours, 0.8)
    returns = np.diff(np.log(candles["close"].to_numpy()))
    consecutive = np.diff(hours) == np.timedelta64(1, "h")
    last = hours.get_loc(pd.Timestamp("2021-01-02 12:00", tz="UTC"))
    kept = returns[:last][consecutive[:last]]
    assert len(kept) == last - 1  # the return across the gap is not one of them
    assert lower[last] == pytest.approx(candles["close"].iloc[last] * np.exp(np.quantile(kept, 0.1)))
    assert np.isnan(lower[:NAIVE_LEAST_RETURNS]).all()  # fewer than 24 returns known: no interval
    assert np.isfinite(lower[NAIVE_LEAST_RETURNS + 1 :]).all()


def test_later_candles_do_not_change_an_hours_interval() -> None:
    candles = make_candles("2021-01-01", "2021-02-28 23:00", noise=0.01)
    hours = pd.DatetimeIndex(candles["open_time"].iloc[800:900])
    before = naive_interval(candles, hours, 0.8)
    moved = candles.copy()
    later = moved["open_time"] > hours[-1]
    moved.loc[later, "close"] *= 3.0
    after = naive_interval(moved, hours, 0.8)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])
