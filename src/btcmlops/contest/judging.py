"""Judging a shadow month from its hourly forecasts: the scores, both tests and the rule's verdict.

One pure function, ``judge``, turns a month's hours (actual close, last close, naive's interval), what
served each hour on the champion's side and the challenger's shadow forecasts into everything a
decision records. The trainer's contest (``Contest.close_month``) calls it on the whole month; the
service's live contest (``GET /contest/live``) calls it on the hours closed so far, so at the month's
end the two are the same figures by construction, not by a second implementation kept in step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from btcmlops.contest.rule import Decision, decide
from btcmlops.contest.scoring import (
    IntervalScores,
    Scores,
    absolute_errors,
    hourly_interval_scores,
    score,
    score_interval,
)
from btcmlops.contest.significance import SignificanceTest, diebold_mariano
from btcmlops.settings import ContestSettings

FORECAST_COLUMNS = ("predicted_close", "lower_close", "upper_close", "interval_level")
"""One contestant's forecast of an hour: the point and its interval (nan: a version with none)."""
HOUR_COLUMNS = ("actual_close", "close", "naive_lower", "naive_upper")
"""What ``judge`` reads of each hour besides the forecasts: the actual close at the target hour, the
close at T (naive's point) and naive's interval."""


@dataclass(frozen=True)
class Judgement:
    """Everything a contest records about one set of hours, before anything is changed.

    Attributes:
        champion: What served the hours (the champion's side, whichever version served each hour).
        challenger: The challenger's shadow forecasts on the same hours.
        naive: The naive baseline ("next close = last close") on the same hours.
        champion_interval: The champion side's interval scores (None: an hour without an interval, or
            intervals at several levels); likewise ``challenger_interval`` and ``naive_interval``.
        tests: The one-sided Diebold-Mariano test of the challenger against the champion side on each
            metric's hourly losses (``mae``; ``interval_score`` where both have intervals).
        decision: The rule's verdict and its reason, with the served-by note when the champion changed
            inside the hours.
    """

    champion: Scores
    challenger: Scores
    naive: Scores
    champion_interval: IntervalScores | None
    challenger_interval: IntervalScores | None
    naive_interval: IntervalScores | None
    tests: dict[str, SignificanceTest]
    decision: Decision


def judge(
    hours: pd.DataFrame,
    served: pd.DataFrame,
    challenger: pd.DataFrame,
    rule: ContestSettings,
    *,
    naive_level: float,
    tenure: dict[int, int] | None = None,
) -> Judgement:
    """Score the champion side, the challenger and naive on ``hours`` and apply the rule.

    Args:
        hours: One row per hour (``HOUR_COLUMNS``), in the order of ``served`` and ``challenger``.
        served: What served each hour on the champion's side (``FORECAST_COLUMNS``).
        challenger: The challenger's forecast of each hour (``FORECAST_COLUMNS``).
        rule: The contest's settings: metric, margin, promotion rule, alpha, whether naive must be beaten.
        naive_level: The level naive's interval was made at (the model settings' interval level).
        tenure: Hours each version served on the champion's side, in the order they served; with more
            than one, the reason ends with who served the champion's side.

    Raises:
        ValueError: Fewer hours than a Diebold-Mariano test needs (``significance.MIN_PAIRS``), or
            frames of different lengths.
    """
    actual = hours["actual_close"].to_numpy(dtype=float)
    last_close = hours["close"].to_numpy(dtype=float)
    champion_scores = score(actual, served["predicted_close"], last_close)
    challenger_scores = score(actual, challenger["predicted_close"], last_close)
    naive_scores = score(actual, last_close, last_close)
    champion_interval = interval_scores(actual, served)
    challenger_interval = interval_scores(actual, challenger)
    naive_interval = naive_interval_scores(hours, naive_level)
    tests = {
        "mae": diebold_mariano(
            absolute_errors(actual, served["predicted_close"]),
            absolute_errors(actual, challenger["predicted_close"]),
        )
    }
    if champion_interval is not None and challenger_interval is not None:
        tests["interval_score"] = diebold_mariano(
            _hourly_interval_scores(actual, served), _hourly_interval_scores(actual, challenger)
        )
    decision = decide(
        champion_scores,
        challenger_scores,
        naive_scores,
        rule,
        test=tests.get(rule.metric),
        intervals=(champion_interval, challenger_interval, naive_interval),
    )
    if tenure is not None and len(tenure) > 1:
        served_by = ", then ".join(f"v{v} ({n} h)" for v, n in tenure.items())
        decision = Decision(
            decision.promote, f"{decision.reason}; champion side served by {served_by}", decision.test
        )
    return Judgement(
        champion=champion_scores,
        challenger=challenger_scores,
        naive=naive_scores,
        champion_interval=champion_interval,
        challenger_interval=challenger_interval,
        naive_interval=naive_interval,
        tests=tests,
        decision=decision,
    )


def interval_scores(actual: npt.ArrayLike, forecasts: pd.DataFrame) -> IntervalScores | None:
    """The interval scores of ``forecasts``; None where an hour has no interval or the hours'
    intervals are not all at one level (nothing comparable to score)."""
    levels = forecasts["interval_level"]
    if levels.isna().any() or levels.nunique() != 1:
        return None
    return score_interval(actual, forecasts["lower_close"], forecasts["upper_close"], float(levels.iloc[0]))


def naive_interval_scores(hours: pd.DataFrame, level: float) -> IntervalScores | None:
    """Naive's interval scores on ``hours`` (None: an hour without naive's interval)."""
    if hours["naive_lower"].isna().any():
        return None
    return score_interval(hours["actual_close"], hours["naive_lower"], hours["naive_upper"], level)


def _hourly_interval_scores(
    actual: npt.NDArray[np.float64], forecasts: pd.DataFrame
) -> npt.NDArray[np.float64]:
    level = float(forecasts["interval_level"].iloc[0])
    return hourly_interval_scores(actual, forecasts["lower_close"], forecasts["upper_close"], level)
