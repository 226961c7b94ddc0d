"""The champion/challenger contest: who is trained on what, who is scored on what, and who serves.

The rule is a shadow month. The first champion is trained on the first ``first_train_months`` months.
At the end of each later month m a challenger is trained on everything through m and runs in shadow
during m + 1 beside the champion; at the end of m + 1 both, and the naive baseline, are scored on
m + 1 (hours they have never been trained on) and the challenger is promoted only if it wins. The pure
parts (calendar, scoring, ``decide``, ``diebold_mariano``, ``TrainingWindow``) take values and return
values and import nothing of MLflow (nor statsmodels until a test is run); ``Contest`` applies them to a
registry and a store one closed month at a time, so a replay and a live trainer drive the same code.
``Contest`` is imported on first use, so that reading the rule (or the registry importing the window)
never pays for MLflow.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from btcmlops.calendar import Month
from btcmlops.contest.rule import Decision, decide
from btcmlops.contest.scoring import Scores, score
from btcmlops.contest.significance import SignificanceTest, diebold_mariano
from btcmlops.contest.window import TrainingWindow

if TYPE_CHECKING:
    from btcmlops.contest.contest import Contest, FairnessError, MonthOutcome

_LAZY = {"Contest", "FairnessError", "MonthOutcome"}

__all__ = [
    "Contest",
    "Decision",
    "FairnessError",
    "Month",
    "MonthOutcome",
    "Scores",
    "SignificanceTest",
    "TrainingWindow",
    "decide",
    "diebold_mariano",
    "score",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module("btcmlops.contest.contest"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
