"""Scores a contest keeps: the daily MAE that shows why a verdict went as it did."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from btcmlops.contest.scoring import daily_mae


def test_daily_mae_is_each_contestants_mean_error_per_utc_day_of_the_target_hours() -> None:
    target = pd.Series(pd.date_range("2024-03-01 22:00", periods=4, freq="h", tz="UTC"))
    actual = np.array([100.0, 102.0, 104.0, 106.0])

    daily = daily_mae(target, actual, {"champion": [101.0, 100.0, 104.0, 110.0], "naive": actual - 1})

    assert list(daily) == ["2024-03-01", "2024-03-02"]  # 22:00 and 23:00, then 00:00 and 01:00
    assert daily["2024-03-01"] == {"champion": pytest.approx(1.5), "naive": pytest.approx(1.0)}
    assert daily["2024-03-02"] == {"champion": pytest.approx(2.0), "naive": pytest.approx(1.0)}
