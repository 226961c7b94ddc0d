"""The promotion rule, as a pure function: it decides and explains, and changes nothing."""

from __future__ import annotations

from dataclasses import dataclass

from btcmlops.contest.scoring import Scores
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


def decide(
    champion: Scores,
    challenger: Scores,
    naive: Scores,
    rule: ContestSettings,
    test: SignificanceTest | None = None,
) -> Decision:
    """Promote the challenger only if its MAE beats the champion's by the margin (and naive, if asked).

    Under ``rule.promotion_rule == "significance"`` the challenger must also win the one-sided
    Diebold-Mariano ``test`` at ``rule.alpha``: a lower MAE that one month of noise could explain does
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
    significance = rule.promotion_rule == "significance"
    if test is None and significance:
        raise ValueError("the significance rule needs a Diebold-Mariano test of the challenger; none given")
    if test is not None and test.n != champion.n:
        raise ValueError(f"test run on different hours: test {test.n}, contestants {champion.n}")
    bar = champion.mae * (1.0 - rule.margin)
    change = challenger.mae / champion.mae - 1.0
    versus = (
        f"challenger MAE {challenger.mae:.2f} vs champion {champion.mae:.2f} ({change:+.2%}, "
        f"margin {rule.margin:.2%}), naive {naive.mae:.2f}"
    )
    # Shown against alpha only where alpha decides, so a margin-rule reason claims no threshold.
    stated = "" if test is None else test.describe(rule.alpha if significance else None)
    with_test = f"{versus}; {stated}" if stated else versus
    if not challenger.mae < bar:
        return Decision(False, f"challenger does not beat the champion: {with_test}", test)
    if rule.require_beat_naive and not challenger.mae < naive.mae:
        return Decision(False, f"challenger beats the champion but not naive: {with_test}", test)
    if significance and test is not None and not test.p_value < rule.alpha:
        # The test leads here: it is the reason, the scores alone would say the challenger won.
        refused = f"challenger beats the champion, but not significant: {stated}; {versus}"
        return Decision(False, refused, test)
    return Decision(True, f"challenger wins: {with_test}", test)
