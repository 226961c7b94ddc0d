"""``Contest``: close one month at a time, against a registry and a store.

The same object runs inside the replay (months closed back to back) and inside the live trainer
(each month closed when the sim clock passes its end). Everything it knows about the past comes from
the registry (aliases, version tags) and the store (candles, decisions), so it can be restarted at
any point and closing a month twice does the work once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import pandas as pd

from btcmlops.calendar import Month
from btcmlops.contest.rule import Decision, decide
from btcmlops.contest.scoring import Scores, score
from btcmlops.contest.training import month_samples, train_through
from btcmlops.features import build_samples
from btcmlops.model import Forecaster
from btcmlops.registry import (
    CHALLENGER,
    CHAMPION,
    ModelRegistry,
    ModelVersionInfo,
    VersionStatus,
    with_alias,
)
from btcmlops.settings import ContestSettings, ModelSettings
from btcmlops.store import DecisionRow
from btcmlops.timing import Timings

PREDICTION_COLUMNS = (
    "timestamp",
    "target_time",
    "actual_close",
    "predicted_close",
    "naive_close",
    "model_version",
    "role",
)


class FairnessError(RuntimeError):
    """A model was about to be scored on an hour it was trained on; the contest refuses."""


class CandleSource(Protocol):
    """Where the contest reads candles; it never asks for one after the month it is closing."""

    def read_candles(self, start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame: ...


class DecisionLedger(Protocol):
    """Where decisions are recorded once per (registered model, shadow month)."""

    def record_decision(self, row: DecisionRow) -> None: ...

    def list_decisions(self, registered_model: str | None = None) -> list[DecisionRow]: ...


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
    """One decision: both models and naive scored on the same shadow month, and the verdict."""

    month: str
    eval_start: pd.Timestamp
    eval_end: pd.Timestamp
    champion_version: int
    challenger_version: int
    champion: Scores
    challenger: Scores
    naive: Scores
    decision: Decision


@dataclass(frozen=True)
class MonthOutcome:
    """What closing one month did."""

    month: Month
    champion_version: int | None
    """The champion after the close (serves the next month)."""
    served_version: int | None = None
    """The champion that served this month."""
    predictions: pd.DataFrame | None = None
    served: Scores | None = None
    naive: Scores | None = None
    contest: ContestRecord | None = None
    trained: list[TrainingRecord] = field(default_factory=list)
    already_closed: bool = False
    """True when the month had been closed before (a restart): nothing was done again."""


class Contest:
    """Drive the shadow-month contest one closed month at a time."""

    def __init__(
        self,
        model: ModelSettings,
        rule: ContestSettings,
        registry: ModelRegistry,
        candles: CandleSource,
        ledger: DecisionLedger,
        *,
        timings: Timings | None = None,
    ) -> None:
        self._model = model
        self._rule = rule
        self._registry = registry
        self._candles = candles
        self._ledger = ledger
        self._timings = timings or Timings()

    def close_month(self, month: Month, *, train_challenger: bool = True) -> MonthOutcome:
        """Close ``month``: score what served it, decide any contest on it, train the next challenger.

        Only candles up to the last hour of ``month`` are read. ``train_challenger`` is False when no
        month will follow (the end of a replay): a challenger that can never be scored is not trained.
        """
        versions = self._registry.versions()  # one registry read: aliases, tags, windows
        champion = with_alias(versions, CHAMPION)
        if _was_closed(month, versions):
            return MonthOutcome(
                month=month, champion_version=champion.version if champion else None, already_closed=True
            )
        with self._timings.measure("features"):
            candles = self._candles.read_candles(end=month.last_hour.to_pydatetime())
            if candles.empty:
                raise ValueError(f"no candles through {month}")
            samples = build_samples(candles, self._model.feature_set)
        if champion is None:
            return self._maybe_train_first_champion(month, candles, samples, versions)

        outcome_rows = month_samples(samples, month)
        champion_after = champion.version
        predictions: list[pd.DataFrame] = []
        served = naive = None
        contest: ContestRecord | None = None
        if not outcome_rows.empty:
            champion_close = self._predict(champion, outcome_rows, month)
            predictions.append(_prediction_frame(outcome_rows, champion_close, champion.version, CHAMPION))
            served = score(outcome_rows["actual_close"], champion_close, outcome_rows["close"])
            naive = score(outcome_rows["actual_close"], outcome_rows["close"], outcome_rows["close"])
            challenger = with_alias(versions, CHALLENGER)
            if challenger is not None:
                challenger_close = self._predict(challenger, outcome_rows, month)
                predictions.append(
                    _prediction_frame(outcome_rows, challenger_close, challenger.version, CHALLENGER)
                )
                contest = self._run_contest(
                    month,
                    outcome_rows,
                    champion,
                    challenger,
                    served,
                    score(outcome_rows["actual_close"], challenger_close, outcome_rows["close"]),
                    naive,
                )
                if contest.decision.promote:
                    champion_after = challenger.version

        trained = []
        if train_challenger:
            trained.append(self._train_and_register(month, candles, samples, versions, role=CHALLENGER))
        return MonthOutcome(
            month=month,
            champion_version=champion_after,
            served_version=champion.version,
            predictions=pd.concat(predictions, ignore_index=True) if predictions else None,
            served=served,
            naive=naive,
            contest=contest,
            trained=trained,
        )

    def first_open_month(self, first: Month) -> Month:
        """The first month not yet closed: the one after the newest month a version was trained through.

        Every close of a month m trains a version through m (the first champion, then a challenger
        each month), so that version marks where a restarted driver resumes; ``first`` if none exists.
        """
        closed = [
            Month.parse(v.window.trained_through) for v in self._registry.versions() if v.status is not None
        ]
        return max(closed).next() if closed else first

    # -- steps ----------------------------------------------------------------------------------------
    def _maybe_train_first_champion(
        self, month: Month, candles: pd.DataFrame, samples: pd.DataFrame, versions: list[ModelVersionInfo]
    ) -> MonthOutcome:
        first_month = Month.of(candles["open_time"].iloc[0])
        if month < first_month.plus(self._rule.first_train_months - 1):
            return MonthOutcome(month=month, champion_version=None)
        record = self._train_and_register(month, candles, samples, versions, role=CHAMPION)
        return MonthOutcome(month=month, champion_version=record.version, trained=[record])

    def _train_and_register(
        self,
        month: Month,
        candles: pd.DataFrame,
        samples: pd.DataFrame,
        versions: list[ModelVersionInfo],
        *,
        role: str,
    ) -> TrainingRecord:
        """Train through ``month`` for ``role``, unless a version trained through it already exists."""
        existing = [v for v in versions if v.window.trained_through == str(month)]
        if existing:  # a restart after the version was registered: finish its set-up, train nothing
            info = existing[0]
        else:
            with self._timings.measure("training"):
                forecaster, window, metrics = train_through(samples, candles, month, self._model)
            info = self._registry.register(
                forecaster,
                window,
                params={**self._model.model_dump(), "role": role},
                metrics=metrics,
                example_features=samples.head(5),
                run_name=f"{role} trained through {month}",
            )
        status = VersionStatus.PRODUCTION if role == CHAMPION else VersionStatus.STAGING
        self._registry.set_status(info.version, status)
        self._registry.set_alias(role, info.version)
        window = info.window
        return TrainingRecord(
            version=info.version,
            run_id=info.run_id,
            role=role,
            trained_through=window.trained_through,
            train_start=window.train_start,
            train_end=window.train_end,
            train_rows=window.train_rows,
            data_hash=window.data_hash,
        )

    def _predict(self, contestant: ModelVersionInfo, rows: pd.DataFrame, month: Month) -> pd.Series:
        """Predict the month's hours with one contestant, refusing if it was trained on any of them."""
        if contestant.window.train_end >= month.start:
            raise FairnessError(
                f"version {contestant.version} was trained through {contestant.window.train_end} "
                f"and cannot be scored on {month}"
            )
        forecaster: Forecaster = self._registry.load(contestant.version)
        if forecaster.feature_set != self._model.feature_set:
            rows = build_samples(
                self._candles.read_candles(end=month.last_hour.to_pydatetime()), forecaster.feature_set
            ).pipe(month_samples, month)
        return pd.Series(forecaster.predict_close(rows), index=rows.index)

    def _run_contest(
        self,
        month: Month,
        rows: pd.DataFrame,
        champion: ModelVersionInfo,
        challenger: ModelVersionInfo,
        champion_scores: Scores,
        challenger_scores: Scores,
        naive_scores: Scores,
    ) -> ContestRecord:
        eval_start = rows["target_time"].iloc[0]
        eval_end = rows["target_time"].iloc[-1]
        recorded = self._recorded_decision(eval_start)
        if recorded is not None:  # a restart after the decision was recorded: re-apply, don't re-decide
            decision = Decision(recorded.promoted, recorded.reason)
        else:
            decision = decide(champion_scores, challenger_scores, naive_scores, self._rule)
        record = ContestRecord(
            month=str(month),
            eval_start=eval_start,
            eval_end=eval_end,
            champion_version=champion.version,
            challenger_version=challenger.version,
            champion=champion_scores,
            challenger=challenger_scores,
            naive=naive_scores,
            decision=decision,
        )
        if recorded is None:
            self._ledger.record_decision(_decision_row(self._registry.model_name, record))
            self._registry.log_contest(
                run_name=f"contest {month}",
                params={
                    "month": str(month),
                    "champion_version": champion.version,
                    "challenger_version": challenger.version,
                    "promoted": decision.promote,
                    "reason": decision.reason[:500],
                    "margin": self._rule.margin,
                    "require_beat_naive": self._rule.require_beat_naive,
                },
                metrics=_contest_metrics(record),
                tags={"month": str(month), "decision": "promoted" if decision.promote else "archived"},
            )
        self._apply(record)
        return record

    def _recorded_decision(self, eval_start: pd.Timestamp) -> DecisionRow | None:
        for row in self._ledger.list_decisions(self._registry.model_name):
            if pd.Timestamp(row.eval_start) == eval_start:
                return row
        return None

    def _apply(self, record: ContestRecord) -> None:
        """Make the registry say what the decision says; safe to repeat.

        Called only while the alias ``challenger`` points at ``record.challenger_version``.
        """
        if record.decision.promote:
            self._registry.set_status(record.champion_version, VersionStatus.ARCHIVED)
            self._registry.set_status(record.challenger_version, VersionStatus.PRODUCTION)
            self._registry.set_alias(CHAMPION, record.challenger_version)
        else:
            self._registry.set_status(record.challenger_version, VersionStatus.ARCHIVED)
        self._registry.delete_alias(CHALLENGER)


def _was_closed(month: Month, versions: list[ModelVersionInfo]) -> bool:
    """A version trained through ``month`` and fully set up means this month's close completed."""
    return any(v.window.trained_through == str(month) and v.status is not None for v in versions)


def _prediction_frame(
    rows: pd.DataFrame, predicted: Sequence[float] | pd.Series, version: int, role: str
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": rows.index,
            "target_time": rows["target_time"].to_numpy(),
            "actual_close": rows["actual_close"].to_numpy(),
            "predicted_close": pd.Series(predicted).to_numpy(dtype=float),
            "naive_close": rows["close"].to_numpy(),
            "model_version": version,
            "role": role,
        },
        columns=list(PREDICTION_COLUMNS),
    )


def _contest_metrics(record: ContestRecord) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for name, scores in (
        ("champion", record.champion),
        ("challenger", record.challenger),
        ("naive", record.naive),
    ):
        for key, value in scores.as_dict().items():
            if key != "n":
                metrics[f"{name}_{key}"] = float(value)
    metrics["hours"] = float(record.champion.n)
    metrics["promoted"] = float(record.decision.promote)
    return metrics


def _decision_row(model_name: str, record: ContestRecord) -> DecisionRow:
    return DecisionRow(
        registered_model=model_name,
        eval_start=record.eval_start.to_pydatetime(),
        eval_end=record.eval_end.to_pydatetime(),
        champion_version=record.champion_version,
        challenger_version=record.challenger_version,
        champion_mae=record.champion.mae,
        challenger_mae=record.challenger.mae,
        naive_mae=record.naive.mae,
        metrics={
            "champion": record.champion.as_dict(),
            "challenger": record.challenger.as_dict(),
            "naive": record.naive.as_dict(),
        },
        promoted=record.decision.promote,
        reason=record.decision.reason,
        decided_at=datetime.now(UTC),
    )
