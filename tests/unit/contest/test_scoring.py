"""Scores a contest keeps: the daily MAE that shows why a verdict went as it did."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from btcmlops.contest.scoring import daily_mae, hourly_interval_scores, score_interval


def test_daily_mae_is_each_contestants_mean_error_per_utc_day_of_the_target_hours() -> None:
    target = pd.Series(pd.date_range("2024-03-01 22:00", periods=4, freq="h", tz="UTC"))
    actual = np.array([100.0, 102.0, 104.0, 106.0])

    daily = daily_mae(target, actual, {"champion": [101.0, 100.0, 104.0, 110.0], "naive": actual - 1})

    assert list(daily) == ["2024-03-01", "2024-03-02"]  # 22:00 and 23:00, then 00:00 and 01:00
    assert daily["2024-03-01"] == {"champion": pytest.approx(1.5), "naive": pytest.approx(1.0)}
    assert daily["2024-03-02"] == {"champion": pytest.approx(2.0), "naive": pytest.approx(1.0)}


def test_interval_scores_known_values() -> None:
    """Level 0.8: a miss costs 2 / 0.2 = 10 times its distance on top of the width."""
    actual = [100.0, 100.0, 100.0, 115.0]
    lower = [95.0, 101.0, 90.0, 95.0]
    upper = [105.0, 110.0, 100.0, 105.0]
    scores = score_interval(actual, lower, upper, 0.8)
    assert scores.coverage == pytest.approx(0.5)  # a bound that equals the close covers it
    assert scores.mean_width == pytest.approx((10 + 9 + 10 + 10) / 4)
    assert list(hourly_interval_scores(actual, lower, upper, 0.8)) == pytest.approx(
        [10, 9 + 10, 10, 10 + 100]
    )
    assert scores.interval_score == pytest.approx((10 + 19 + 10 + 110) / 4)
    assert scores.pinball == pytest.approx(scores.interval_score * 0.2 / 4)


def test_interval_scoring_refuses_what_cannot_be_scored() -> None:
    with pytest.raises(ValueError, match="same length"):
        score_interval([1.0], [0.0, 0.0], [2.0], 0.8)
    with pytest.raises(ValueError, match="zero intervals"):
        score_interval([], [], [], 0.8)
    with pytest.raises(ValueError, match="missing or infinite bound"):
        score_interval([1.0], [float("nan")], [2.0], 0.8)


def test_the_interval_score_prefers_the_true_quantiles() -> None:
    """A proper score: on normal noise the true 10 %/90 % quantiles beat a narrower and a wider interval."""
    rng = np.random.default_rng(0)
    actual = rng.normal(0.0, 1.0, 50_000)
    ones = np.ones_like(actual)

    def mean_score(half_width: float) -> float:
        return score_interval(actual, -half_width * ones, half_width * ones, 0.8).interval_score

    assert mean_score(1.2816) < min(mean_score(0.9), mean_score(1.8))
