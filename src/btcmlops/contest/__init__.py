"""The champion/challenger contest: who is trained on what, who is scored on what, and who serves.

The rule is a shadow month. The first champion is trained on the first ``first_train_months`` months.
At the end of each later month m a challenger is trained on everything through m and runs in shadow
during m + 1 beside the champion; at the end of m + 1 both, and the naive baseline, are scored on
m + 1 (hours they have never been trained on) and the challenger is promoted only if it wins. The pure
parts (calendar, scoring, ``decide``, ``diebold_mariano``, ``TrainingWindow``) take values and return
values and import nothing of MLflow (nor statsmodels until a test is run);
``btcmlops.contest.contest.Contest`` applies them to a registry and a store one closed month at a time,
so a replay and a live trainer drive the same code. This package exports the pure parts only: reading
the rule never pays for MLflow, and ``Contest`` is imported from its own module by what drives it.
"""

from __future__ import annotations

from btcmlops.calendar import Month
from btcmlops.contest.rule import Decision, decide
from btcmlops.contest.scoring import Scores, score
from btcmlops.contest.significance import SignificanceTest, diebold_mariano
from btcmlops.training_window import TrainingWindow

__all__ = [
    "Decision",
    "Month",
    "Scores",
    "SignificanceTest",
    "TrainingWindow",
    "decide",
    "diebold_mariano",
    "score",
]
