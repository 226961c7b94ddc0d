"""What closing a month produces, and what the contest reads and writes through.

The contestants trained (``TrainingRecord``), one decision's full record (``ContestRecord``), what a close
did (``MonthOutcome``) and how an open shadow month stands (``MonthStanding``); the candle source and
the decision ledger the ``Contest`` is given. Values only, importable without ``Contest`` and the
registry it drives: the replay's summary reads them so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import pandas as pd

from btcmlops.calendar import Month
from btcmlops.contest.judging import Judgement
from btcmlops.contest.rule import Decision
from btcmlops.contest.scoring import IntervalScores, Scores
from btcmlops.contest.significance import SignificanceTest
from btcmlops.store import DecisionRow, RegistryJournal

PREDICTION_COLUMNS = (
    "timestamp",
    "target_time",
    "actual_close",
    "predicted_close",
    "lower_close",
    "upper_close",
    "interval_level",
    "naive_close",
    "naive_lower",
    "naive_upper",
    "model_version",
    "role",
)


class CandleSource(Protocol):
    """Where the contest reads candles; it never asks for one after the month it is closing."""

    def read_candles(self, start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame: ...


class DecisionLedger(Protocol):
    """Where decisions are recorded once per (registered model, shadow month), beside the journal."""

    def record_decision(self, row: DecisionRow) -> None: ...

    def list_decisions(self, registered_model: str | None = None) -> list[DecisionRow]: ...

    @property
    def journal(self) -> RegistryJournal: ...


@dataclass(frozen=True)
class TrainingRecord:
    """A contestant trained at a month's close: v1 as champion, later ones as challengers."""

    version: int
    run_id: str
    role: str
    trained_through: str
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    train_rows: int
    data_hash: str


@dataclass(frozen=True)
class ContestRecord:
    """One decision: what served the shadow month, the challenger and naive on its hours, the verdict."""

    month: str
    eval_start: pd.Timestamp
    eval_end: pd.Timestamp
    champion_version: int
    challenger_version: int
    champion: Scores
    challenger: Scores
    naive: Scores
    decision: Decision
    champion_interval: IntervalScores | None = None
    challenger_interval: IntervalScores | None = None
    naive_interval: IntervalScores | None = None
    tests: dict[str, SignificanceTest] = field(default_factory=dict)
    """The Diebold-Mariano test on each metric's hourly losses (``mae``, ``interval_score``); the
    decision's own test is the one of the metric the rule was applied to."""
    tenure: dict[int, int] = field(default_factory=dict)
    """Hours of the month each version served on the champion's side (one entry unless changed)."""
    daily: dict[str, dict[str, float]] = field(default_factory=dict)
    """Each contestant's MAE per day of the month (``daily_mae``): why the verdict went as it did."""
    drift: dict[str, float] = field(default_factory=dict)
    """Each model feature's PSI over the month's hours against the champion's training window
    (``btcmlops.features.drift``): how far the month's inputs were from what the champion learnt on."""

    def interval_scores(self) -> dict[str, dict[str, float | int]]:
        """Each contestant's interval scores by role (``champion``, ``challenger``, ``naive``), those
        that have one: what the decision row, ``summary.json`` and ``/decisions`` show."""
        sides = (
            ("champion", self.champion_interval),
            ("challenger", self.challenger_interval),
            ("naive", self.naive_interval),
        )
        return {name: scores.as_dict() for name, scores in sides if scores is not None}


@dataclass(frozen=True)
class MonthOutcome:
    """What closing one month did."""

    month: Month
    champion_version: int | None
    """The champion after the close (serves the next month)."""
    served_version: int | None = None
    """The champion that served this month (the last one, if it changed inside the month)."""
    predictions: pd.DataFrame | None = None
    served: Scores | None = None
    naive: Scores | None = None
    served_interval: IntervalScores | None = None
    naive_interval: IntervalScores | None = None
    contest: ContestRecord | None = None
    trained: list[TrainingRecord] = field(default_factory=list)
    already_closed: bool = False
    """True when the month had been closed before (a restart): nothing was done again."""
    note: str = ""
    """Why nothing was contested, when nothing was (warming up, too few hours, no challenger)."""
    recovered: bool = False
    """True when this close was begun by a process that died, and finished by this one."""


@dataclass(frozen=True)
class MonthStanding:
    """How a shadow month's contest stands on the hours closed so far (``Contest.standing``)."""

    month: Month
    hours: int
    """Hours scored: target hours of the month closed so far that have a sample (a gap has none)."""
    hours_left: int
    """Target hours of the month not closed yet."""
    expected_hours: int
    champion_version: int
    challenger_version: int
    judgement: Judgement | None = None
    """None until the month has enough hours for a test (``significance.MIN_PAIRS``)."""
    tenure: dict[int, int] = field(default_factory=dict)
    last_target: pd.Timestamp | None = None
