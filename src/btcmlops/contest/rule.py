"""The promotion rule, as a pure function: it decides and explains, and changes nothing."""

from __future__ import annotations

from dataclasses import dataclass

from btcmlops.contest.scoring import IntervalScores, Scores
from btcmlops.contest.significance import SignificanceTest
from btcmlops.settings import ContestSettings

PROMOTED = "promoted"
ARCHIVED = "archived"
"""The two outcomes of a contest, in the words every surface uses (CLI, API, MLflow, dashboard); a
champion put back by hand is "rolled back" (the audit's change kind)."""


def outcome_of(promoted: bool) -> str:
    """The outcome word of a contest whose challenger was (or was not) promoted."""
    return PROMOTED if promoted else ARCHIVED


@dataclass(frozen=True)
class Decision:
    """Whether the challenger takes over, and why, in words an operator can read.

    Attributes:
        promote: Whether the challenger becomes the champion.
        reason: The scores (and the test, if one was run) behind the decision.
        test: The Diebold-Mariano test of the challenger against the champion, if one was run; it is
            recorded whichever rule decided.
    """

    promote: bool
    reason: str
    test: SignificanceTest | None = None


METRIC_NAMES = {"mae": "MAE", "interval_score": "interval score"}
"""How a reason names each score the rule can be applied to (``ContestSettings.metric``)."""


def _metric_values(
    metric: str,
    point: tuple[Scores, Scores, Scores],
    intervals: tuple[IntervalScores | None, IntervalScores | None, IntervalScores | None] | None,
) -> tuple[float, float, float] | str:
    """(champion, challenger, naive) of ``metric``, or why they cannot be compared."""
    if metric == "mae":
        return point[0].mae, point[1].mae, point[2].mae
    if intervals is None:
        return "a contestant has no interval to score"
    champion, challenger, naive = intervals
    if champion is None or challenger is None or naive is None:
        return "a contestant has no interval to score"
    if not champion.level == challenger.level == naive.level:
        return (
            f"intervals at different levels cannot be compared (champion {champion.level:g}, "
            f"challenger {challenger.level:g}, naive {naive.level:g})"
        )
    return champion.interval_score, challenger.interval_score, naive.interval_score


def decide(
    champion: Scores,
    challenger: Scores,
    naive: Scores,
    rule: ContestSettings,
    test: SignificanceTest | None = None,
    intervals: tuple[IntervalScores | None, IntervalScores | None, IntervalScores | None] | None = None,
) -> Decision:
    """Promote the challenger only if its score beats the champion's by the margin (and naive, if asked).

    The score is ``rule.metric``: the point forecast's MAE (the default) or the interval's interval
    score (``intervals``: champion, challenger and naive, at one level); lower is better for both, and
    the reason names the one that decided. Under ``rule.promotion_rule == "significance"`` the
    challenger must also win the one-sided Diebold-Mariano ``test`` (run by the caller on the hourly
    losses of that metric) at ``rule.alpha``: a lower score that one month of noise could explain does
    not promote. Under the margin rule the test changes nothing but the reason, which then ends with it.

    All three must have been scored on the same hours, and the test run on those hours; the caller
    guarantees those are hours neither model was trained on.

    Raises:
        ValueError: If the contestants (or the test) cover different numbers of hours, or if the rule
            is "significance" and no test is given.
    """
    if not champion.n == challenger.n == naive.n:
        raise ValueError(
            f"contestants scored on different hours: champion {champion.n}, "
            f"challenger {challenger.n}, naive {naive.n}"
        )
    name = METRIC_NAMES[rule.metric]
    values = _metric_values(rule.metric, (champion, challenger, naive), intervals)
    if isinstance(values, str):
        return Decision(False, f"challenger cannot be judged on the {name}: {values}", test)
    significance = rule.promotion_rule == "significance"
    if test is None and significance:
        raise ValueError("the significance rule needs a Diebold-Mariano test of the challenger; none given")
    if test is not None and test.n != champion.n:
        raise ValueError(f"test run on different hours: test {test.n}, contestants {champion.n}")
    champion_value, challenger_value, naive_value = values
    bar = champion_value * (1.0 - rule.margin)
    change = challenger_value / champion_value - 1.0
    versus = (
        f"challenger {name} {challenger_value:.2f} vs champion {champion_value:.2f} ({change:+.2%}, "
        f"margin {rule.margin:.2%}), naive {naive_value:.2f}"
    )
    # Shown against alpha only where alpha decides, so a margin-rule reason claims no threshold.
    stated = "" if test is None else test.describe(rule.alpha if significance else None)
    with_test = f"{versus}; {stated}" if stated else versus
    if not challenger_value < bar:
        return Decision(False, f"challenger does not beat the champion: {with_test}", test)
    if rule.require_beat_naive and not challenger_value < naive_value:
        return Decision(False, f"challenger beats the champion but not naive: {with_test}", test)
    if significance and test is not None and not test.p_value < rule.alpha:
        # The test leads here: it is the reason, the scores alone would say the challenger won.
        refused = f"challenger beats the champion, but not significant: {stated}; {versus}"
        return Decision(False, refused, test)
    return Decision(True, f"challenger wins: {with_test}", test)
