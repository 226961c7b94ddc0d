"""The promotion rule, as a pure function: it decides and explains, and changes nothing."""

from __future__ import annotations

from dataclasses import dataclass

from btcmlops.contest.scoring import Scores
from btcmlops.settings import ContestSettings


@dataclass(frozen=True)
class Decision:
    """Whether the challenger takes over, and why, in words an operator can read."""

    promote: bool
    reason: str


def decide(champion: Scores, challenger: Scores, naive: Scores, rule: ContestSettings) -> Decision:
    """Promote the challenger only if its MAE beats the champion's by the margin (and naive, if asked).

    All three must have been scored on the same hours; the caller guarantees those are hours neither
    model was trained on.
    """
    if not champion.n == challenger.n == naive.n:
        raise ValueError(
            f"contestants scored on different hours: champion {champion.n}, "
            f"challenger {challenger.n}, naive {naive.n}"
        )
    bar = champion.mae * (1.0 - rule.margin)
    change = challenger.mae / champion.mae - 1.0
    versus = (
        f"challenger MAE {challenger.mae:.2f} vs champion {champion.mae:.2f} ({change:+.2%}, "
        f"margin {rule.margin:.2%}), naive {naive.mae:.2f}"
    )
    if not challenger.mae < bar:
        return Decision(False, f"challenger does not beat the champion: {versus}")
    if rule.require_beat_naive and not challenger.mae < naive.mae:
        return Decision(False, f"challenger beats the champion but not naive: {versus}")
    return Decision(True, f"challenger wins: {versus}")
