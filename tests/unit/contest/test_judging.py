"""``judge``: a month's hours and forecasts to the decision's scores, tests and verdict, worked by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from btcmlops.contest.judging import judge
from btcmlops.settings import ContestSettings

LEVEL = 0.8
"""Penalty 2 / (1 - 0.8) = 10 per USDT of a miss."""


def _hours() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "actual_close": [100.0, 102.0, 101.0, 103.0],
            "close": [99.0, 100.0, 102.0, 101.0],
            "naive_lower": [97.0, 98.0, 100.0, 99.0],
            "naive_upper": [101.0, 102.0, 104.0, 103.0],
        }
    )


def _forecasts(points: list[float], half_width: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "predicted_close": points,
            "lower_close": [p - half_width for p in points],
            "upper_close": [p + half_width for p in points],
            "interval_level": LEVEL,
        }
    )


SERVED = _forecasts([101.0, 101.0, 101.0, 101.0], 1.0)
"""Errors 1, 1, 0, 2 (MAE 1); intervals [100, 102]: the last misses by 1 (scores 2, 2, 2, 12)."""
CHALLENGER = _forecasts([100.0, 102.0, 102.0, 103.0], 0.5)
"""Errors 0, 0, 1, 0 (MAE 0.25); the third interval [101.5, 102.5] misses by 0.5 (scores 1, 1, 6, 1)."""


def test_scores_intervals_and_verdict_are_the_hand_computed_ones() -> None:
    judged = judge(_hours(), SERVED, CHALLENGER, ContestSettings(), naive_level=LEVEL)

    assert (judged.champion.mae, judged.challenger.mae, judged.naive.mae) == (1.0, 0.25, 1.5)
    assert judged.champion_interval is not None
    assert judged.challenger_interval is not None
    assert judged.naive_interval is not None
    assert judged.champion_interval.interval_score == pytest.approx(4.5)
    assert judged.challenger_interval.interval_score == pytest.approx(2.25)
    assert judged.naive_interval.interval_score == pytest.approx(4.0)  # width 4, never missed
    assert (judged.champion_interval.coverage, judged.naive_interval.coverage) == (0.75, 1.0)
    assert judged.decision.promote
    assert judged.decision.reason.startswith("challenger wins: challenger MAE 0.25 vs champion 1.00 (-75.00%")
    assert set(judged.tests) == {"mae", "interval_score"}


def test_the_mae_test_is_the_newey_west_diebold_mariano_worked_by_hand() -> None:
    """d = |challenger| - |champion| = -1, -1, 1, -2: mean -0.75; 1 lag for 4 hours (Newey-West's rule)."""
    judged = judge(_hours(), SERVED, CHALLENGER, ContestSettings(), naive_level=LEVEL)
    residuals = [-0.25, -0.25, 1.75, -1.25]
    gamma0 = sum(u * u for u in residuals) / 4
    gamma1 = sum(a * b for a, b in zip(residuals[1:], residuals[:-1], strict=True)) / 4
    long_run = gamma0 + 2 * 0.5 * gamma1  # Bartlett weight 1 - 1/2 at lag 1
    statistic = -0.75 / math.sqrt(long_run / 4)
    test = judged.tests["mae"]
    assert (test.lags, test.n) == (1, 4)
    assert test.statistic == pytest.approx(statistic, rel=1e-9)
    assert test.p_value == pytest.approx(0.5 * (1 + math.erf(statistic / math.sqrt(2))), rel=1e-9)


def test_the_rule_settings_decide_and_a_changed_champion_is_named_in_the_reason() -> None:
    strict = ContestSettings(margin=0.8)  # the challenger must be below 0.2: 0.25 is not
    refused = judge(_hours(), SERVED, CHALLENGER, strict, naive_level=LEVEL, tenure={1: 2, 2: 2})
    assert not refused.decision.promote
    assert refused.decision.reason.startswith("challenger does not beat the champion")
    assert refused.decision.reason.endswith("; champion side served by v1 (2 h), then v2 (2 h)")
    on_intervals = judge(
        _hours(), SERVED, CHALLENGER, ContestSettings(metric="interval_score"), naive_level=LEVEL
    )
    assert "interval score 2.25 vs champion 4.50" in on_intervals.decision.reason


def test_fewer_hours_than_a_test_needs_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        judge(_hours().head(2), SERVED.head(2), CHALLENGER.head(2), ContestSettings(), naive_level=LEVEL)
