"""``Contest``: close one month at a time, against a registry and a store, surviving any crash.

The same object runs inside the replay (months closed back to back) and inside the live trainer
(each month closed when the sim clock passes its end). Closing a month is a plan and its steps: the
plan (what was scored, what was decided, what to train) is computed from the registry and the
candles, written to the journal as a pending change, and only then carried out one idempotent step
at a time (decision row, contest run, status tags, aliases, the next challenger), the journal row
closing with its audit rows last. A process that dies anywhere leaves a pending plan that
``reconcile`` finishes on the next start, with the plan's own numbers: nothing is decided twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from btcmlops.calendar import Month
from btcmlops.contest.changes import MONTH_CLOSE, ChampionChanges, StepHook, no_step
from btcmlops.contest.decision_rows import contest_metrics, decision_from_json, decision_json, decision_row
from btcmlops.contest.judging import (
    FORECAST_COLUMNS,
    interval_scores,
    judge,
    naive_interval_scores,
)
from btcmlops.contest.records import (
    PREDICTION_COLUMNS,
    CandleSource,
    ContestRecord,
    DecisionLedger,
    MonthOutcome,
    MonthStanding,
    TrainingRecord,
)
from btcmlops.contest.rule import outcome_of
from btcmlops.contest.scoring import daily_mae, score
from btcmlops.contest.significance import MIN_PAIRS
from btcmlops.contest.training import Fit, month_samples, train_through
from btcmlops.features import build_samples, get_feature_set
from btcmlops.features.drift import reference_bins
from btcmlops.model import Forecaster, naive_interval
from btcmlops.registry import (
    CHALLENGER,
    CHAMPION,
    ModelRegistry,
    ModelVersionInfo,
    VersionStatus,
    with_alias,
)
from btcmlops.registry.presentation import contest_run_name, contest_version_tags, version_description
from btcmlops.settings import ContestSettings, ModelSettings
from btcmlops.store import AuditEntry, JournalEntry
from btcmlops.timing import Timings

CONTEST_ACTOR = "contest"


class FairnessError(RuntimeError):
    """A model was about to be scored on an hour it was trained on; the contest refuses."""


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
        on_step: StepHook = no_step,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sim_now: Callable[[], datetime | None] = lambda: None,
        change_grace_s: float = 0.0,
        load: Callable[[int], Forecaster] | None = None,
        fit: Fit | None = None,
    ) -> None:
        """``change_grace_s``: how old a pending change by hand must be before ``reconcile`` takes it for
        cut off and rolls it forward (``StoreSettings.change_grace_s`` in the trainer; 0 by hand).
        ``load``: how a version's forecaster is had (default: loaded from the registry each time; the
        service's live contest passes the models it holds in memory).

        ``fit``: where the model trained through a month comes from (None: trained here, when the plan
        asks for it). A fit depends on the candles through its month only, so the replay fits them
        ahead on other processes; registering it and every registry change stay here, in order.
        """
        self._load = load or registry.load
        self._fit = fit
        self._model = model
        self._rule = rule
        self._registry = registry
        self._candles = candles
        self._ledger = ledger
        self._journal = ledger.journal
        self._timings = timings or Timings()
        self._step = on_step
        self._now = now
        self._change_grace_s = change_grace_s
        self.changes = ChampionChanges(
            registry, self._journal, ledger, now=now, sim_now=sim_now, on_step=on_step
        )

    # -- public ---------------------------------------------------------------------------------------
    def close_month(self, month: Month, *, train_challenger: bool = True) -> MonthOutcome:
        """Close ``month``: score what served it, decide any contest on it, train the next challenger.

        Only candles up to the last hour of ``month`` are read. ``train_challenger`` is False when no
        month will follow (the end of a replay): a challenger that can never be scored is not trained.
        A change left half-done by a dead process is finished first.
        """
        recovered = self.reconcile()
        if any(outcome.month == month for outcome in recovered):
            return next(outcome for outcome in recovered if outcome.month == month)
        if any(entry.month == str(month) for entry in self._journal.closed_months(self._name)):
            champion = self._registry.get_by_alias(CHAMPION)
            return MonthOutcome(
                month=month, champion_version=champion.version if champion else None, already_closed=True
            )
        self._step("plan")
        with self._timings.measure("features"):
            candles = self._candles.read_candles(end=month.last_hour.to_pydatetime())
            if candles.empty:
                raise ValueError(f"no candles through {month}")
            samples = build_samples(candles, self._model.feature_set)
        planned: list[MonthOutcome] = []

        def make_plan() -> tuple[dict[str, Any], str]:
            plan, outcome = self._plan(month, candles, samples, train_challenger=train_challenger)
            planned.append(outcome)
            return plan, str(plan["note"])

        entry = self._journal.begin_fresh(
            self._name, MONTH_CLOSE, make_plan, actor=CONTEST_ACTOR, now=self._now, month=str(month)
        )
        outcome = planned[-1]
        self._step("journal.begun")
        trained = self._carry_out(entry, candles, samples)
        self.changes.check_and_log()
        return MonthOutcome(
            month=outcome.month,
            champion_version=self._champion_after(entry.plan, trained),
            served_version=outcome.served_version,
            predictions=outcome.predictions,
            served=outcome.served,
            naive=outcome.naive,
            served_interval=outcome.served_interval,
            naive_interval=outcome.naive_interval,
            contest=outcome.contest,
            trained=trained,
            note=outcome.note,
        )

    def reconcile(self, *, grace_s: float | None = None) -> list[MonthOutcome]:
        """Finish a change a dead process left pending, then bring the registry in line with the journal.

        A pending month close is finished at once (month closes are the trainer's, under its lease); a
        change by hand only once it has been pending ``grace_s`` (default: the contest's
        ``change_grace_s``), so one still in flight in another process is not raced. Safe to call at any
        time, and cheap when there is nothing to do: the trainer calls it on every start, every
        ``change_check_s`` and before every month close. Returns the month closes it finished.
        """
        finished: list[MonthOutcome] = []
        pending = self._journal.pending(self._name)
        if pending is not None and pending.kind == MONTH_CLOSE:
            assert pending.month is not None
            trained = self._carry_out(pending, None, None)
            finished.append(
                MonthOutcome(
                    month=Month.parse(pending.month),
                    champion_version=self._champion_after(pending.plan, trained),
                    trained=trained,
                    note=pending.plan["note"],
                    recovered=True,
                )
            )
        elif pending is not None:
            self.changes.repair_stale(self._change_grace_s if grace_s is None else grace_s)
        self.changes.sync_with_registry()
        self._registry.fail_orphan_runs()
        return finished

    def first_open_month(self, first: Month) -> Month:
        """The first month not yet closed: the one after the newest closed month, or ``first``."""
        return self._journal.first_open_month(self._name, first)

    def served_forecasts(self, month: Month) -> pd.DataFrame:
        """What served ``month``, hour by hour, as the audit says (the champion's side of a contest)."""
        candles = self._candles.read_candles(end=month.last_hour.to_pydatetime())
        rows = self._with_naive_interval(
            month_samples(build_samples(candles, self._model.feature_set), month), candles
        )
        versions = {v.version: v for v in self._registry.versions()}
        served, tenure = self._served(rows, month, versions)
        return pd.concat(_served_frames(rows, served, tenure)).sort_values("target_time", ignore_index=True)

    def standing(
        self,
        month: Month,
        *,
        champion: int,
        challenger: int,
        through: pd.Timestamp | None = None,
        versions: dict[int, ModelVersionInfo] | None = None,
        candles: pd.DataFrame | None = None,
    ) -> MonthStanding:
        """How ``month``'s contest stands on its hours closed by ``through`` (default: the whole month).

        The same rows, the same champion side (what served each hour, by the audit) and the same
        ``judge`` as ``close_month``: on the whole month it is the decision the close records. Reads
        candles up to ``through`` only. ``champion`` is the version an hour no audited change covers is
        served by (the champion at the close); ``versions``: the registry's versions, if the caller
        holds them (default: asked of the registry); ``candles``: the candles, canonical, if the caller
        holds them as read from this store (the service's in memory; default: read from the store).

        Raises:
            FairnessError: The challenger (or a champion) was trained on an hour of ``month``.
        """
        last = month.last_hour if through is None else min(month.last_hour, through)
        if candles is None:
            candles = self._candles.read_candles(end=last.to_pydatetime())
        else:
            candles = candles.loc[candles["open_time"] <= last].reset_index(drop=True)
        rows = (
            month_samples(build_samples(candles, self._model.feature_set), month)
            if not candles.empty
            else pd.DataFrame()
        )
        expected = month.hours
        closed = max(0, min(expected, int((last - month.start) / pd.Timedelta(hours=1)) + 1))
        standing = MonthStanding(
            month=month, hours=len(rows), hours_left=expected - closed, expected_hours=expected,
            champion_version=champion, challenger_version=challenger,
        )  # fmt: skip
        if len(rows) < MIN_PAIRS:
            return standing
        known = versions if versions is not None else {v.version: v for v in self._registry.versions()}
        rows = self._with_naive_interval(rows, candles)
        served, tenure = self._served(rows, month, known, champion)
        challenger_forecasts = self._predict(known[challenger], rows, month)
        hours = _tenure_hours(tenure)
        judgement = judge(
            rows,
            served,
            challenger_forecasts,
            self._rule,
            naive_level=self._model.interval_level,
            tenure=hours,
        )
        return replace(standing, judgement=judgement, tenure=hours, last_target=rows["target_time"].iloc[-1])

    @property
    def _name(self) -> str:
        return self._registry.model_name

    @property
    def model_name(self) -> str:
        """The registered model this contest is for."""
        return self._registry.model_name

    def champion_version(self) -> int | None:
        """The version holding 'champion' now (None before the first)."""
        champion = self._registry.get_by_alias(CHAMPION)
        return None if champion is None else champion.version

    # -- the plan -------------------------------------------------------------------------------------
    def _plan(
        self, month: Month, candles: pd.DataFrame, samples: pd.DataFrame, *, train_challenger: bool
    ) -> tuple[dict[str, Any], MonthOutcome]:
        """Decide everything this close will do, before doing any of it."""
        versions = self._registry.versions()
        versions_by_number = {v.version: v for v in versions}
        champion = with_alias(versions, CHAMPION)
        challenger = with_alias(versions, CHALLENGER)
        plan: dict[str, Any] = {
            "month": str(month),
            "effective": month.next().start.isoformat(),
            "champion": champion.version if champion else None,
            "challenger": challenger.version if challenger else None,
            "promote": False,
            "train": None,
            "decision": None,
            "contest_run": None,
            "tenure": {},
        }
        if champion is None:
            first_month = Month.of(candles["open_time"].iloc[0])
            if month < first_month.plus(self._rule.first_train_months - 1):
                plan["note"] = f"warming up: {self._rule.first_train_months} months before the first champion"
                return plan, MonthOutcome(month=month, champion_version=None, note=plan["note"])
            plan["train"] = CHAMPION
            plan["note"] = f"first champion: trained through {month}"
            return plan, MonthOutcome(month=month, champion_version=None, note=plan["note"])

        rows = month_samples(samples, month)
        expected = month.hours
        plan["hours"], plan["expected_hours"] = len(rows), expected
        if len(rows) < self._rule.min_month_share * expected or rows.empty:
            plan["note"] = (
                f"no contest: {len(rows)} of {expected} hours "
                f"(a contest needs {self._rule.min_month_share:.0%} of the month)"
                + (f"; v{challenger.version} stays in shadow into {month.next()}" if challenger else "")
            )
            return plan, MonthOutcome(
                month=month,
                champion_version=champion.version,
                served_version=champion.version,
                note=plan["note"],
            )

        rows = self._with_naive_interval(rows, candles)
        served_forecasts, tenure = self._served(rows, month, versions_by_number)
        plan["tenure"] = {str(v): n for v, n in _tenure_hours(tenure).items()}
        predictions = _served_frames(rows, served_forecasts, tenure)
        served = score(rows["actual_close"], served_forecasts["predicted_close"], rows["close"])
        naive = score(rows["actual_close"], rows["close"], rows["close"])
        served_interval = interval_scores(rows["actual_close"], served_forecasts)
        naive_interval = naive_interval_scores(rows, self._model.interval_level)
        contest: ContestRecord | None = None
        if challenger is not None:
            challenger_forecasts = self._predict(challenger, rows, month)
            predictions.append(_prediction_frame(rows, challenger_forecasts, challenger.version, CHALLENGER))
            contest = self._contest(
                month, rows, champion, challenger, served_forecasts, challenger_forecasts, tenure
            )
            with self._timings.measure("drift"):
                contest = replace(contest, drift=self._feature_drift(samples, rows, champion))
            plan["promote"] = contest.decision.promote
            plan["decision"] = decision_json(
                decision_row(self._name, contest, self._now(), self._rule.metric)
            )
            plan["contest_run"] = self._contest_run(contest)
            plan["note"] = contest.decision.reason
        else:
            plan["note"] = f"no challenger in shadow during {month}: nothing to contest"
        if train_challenger:
            plan["train"] = CHALLENGER
        outcome = MonthOutcome(
            month=month,
            champion_version=champion.version,
            served_version=champion.version,
            predictions=pd.concat(predictions, ignore_index=True),
            served=served,
            naive=naive,
            served_interval=served_interval,
            naive_interval=naive_interval,
            contest=contest,
            note="" if contest else plan["note"],
        )
        return plan, outcome

    def _feature_drift(
        self, samples: pd.DataFrame, rows: pd.DataFrame, champion: ModelVersionInfo
    ) -> dict[str, float]:
        """Each feature's PSI over the month's ``rows`` against the champion's training samples (target
        hour inside its training window); empty when none of them is among ``samples``."""
        columns = get_feature_set(self._model.feature_set).columns
        target = samples["target_time"]
        window = champion.window
        reference = samples.loc[(target >= window.train_start) & (target <= window.train_end), list(columns)]
        if reference.empty or rows.empty:
            return {}
        return reference_bins(reference.to_numpy(), columns).psi(rows.loc[:, list(columns)].to_numpy())

    def _with_naive_interval(self, rows: pd.DataFrame, candles: pd.DataFrame) -> pd.DataFrame:
        """``rows`` with naive's interval of each hour (``naive_lower``, ``naive_upper``) at the level set."""
        lower, upper = naive_interval(candles, pd.DatetimeIndex(rows.index), self._model.interval_level)
        return rows.assign(naive_lower=lower, naive_upper=upper)

    def _served(
        self,
        rows: pd.DataFrame,
        month: Month,
        versions: dict[int, ModelVersionInfo],
        champion: int | None = None,
    ) -> tuple[pd.DataFrame, pd.Series]:
        """Each hour's served forecast (``FORECAST_COLUMNS``) and the version that served it, from the
        champion audit; an hour no audited change covers is the ``champion``'s (default: the version
        holding the alias now, as at a month's close)."""
        if champion is None:
            holder = with_alias(list(versions.values()), CHAMPION)
            assert holder is not None
            champion = holder.version
        tenure = pd.Series(champion, index=rows.index, dtype="int64")
        for change in self._journal.audit(self._name):
            if change.sim_time is not None:
                tenure[rows["target_time"] >= pd.Timestamp(change.sim_time)] = change.to_version
        served = pd.DataFrame(np.nan, index=rows.index, columns=list(FORECAST_COLUMNS), dtype="float64")
        for version in pd.unique(tenure):
            mask = tenure == version
            served.loc[mask] = self._predict(versions[int(version)], rows.loc[mask], month)
        return served, tenure

    def _contest(
        self,
        month: Month,
        rows: pd.DataFrame,
        champion: ModelVersionInfo,
        challenger: ModelVersionInfo,
        served_forecasts: pd.DataFrame,
        challenger_forecasts: pd.DataFrame,
        tenure: pd.Series,
    ) -> ContestRecord:
        hours = _tenure_hours(tenure)
        judgement = judge(
            rows,
            served_forecasts,
            challenger_forecasts,
            self._rule,
            naive_level=self._model.interval_level,
            tenure=hours,
        )
        return ContestRecord(
            month=str(month),
            eval_start=rows["target_time"].iloc[0],
            eval_end=rows["target_time"].iloc[-1],
            champion_version=champion.version,
            challenger_version=challenger.version,
            champion=judgement.champion,
            challenger=judgement.challenger,
            naive=judgement.naive,
            decision=judgement.decision,
            champion_interval=judgement.champion_interval,
            challenger_interval=judgement.challenger_interval,
            naive_interval=judgement.naive_interval,
            tests=judgement.tests,
            tenure=hours,
            daily=daily_mae(
                rows["target_time"],
                rows["actual_close"].to_numpy(),
                {
                    "champion": served_forecasts["predicted_close"],
                    "challenger": challenger_forecasts["predicted_close"],
                    "naive": rows["close"],
                },
            ),
        )

    def _contest_run(self, record: ContestRecord) -> dict[str, Any]:
        return {
            "run_name": contest_run_name(
                record.month,
                record.champion_version,
                record.challenger_version,
                record.champion.mae,
                record.challenger.mae,
                record.naive.mae,
                record.decision.promote,
            ),
            "params": {
                "month": record.month,
                "champion_version": record.champion_version,
                "challenger_version": record.challenger_version,
                "promoted": record.decision.promote,
                "reason": record.decision.reason[:500],
                "margin": self._rule.margin,
                "require_beat_naive": self._rule.require_beat_naive,
                "promotion_rule": self._rule.promotion_rule,
                "alpha": self._rule.alpha,
                "metric": self._rule.metric,
                "tenure": ",".join(f"v{v}:{n}" for v, n in record.tenure.items()),
            },
            "metrics": contest_metrics(record),
            "tags": {
                "month": record.month,
                "decision": outcome_of(record.decision.promote),
                "mlflow.note.content": record.decision.reason,
            },
        }

    # -- the steps ------------------------------------------------------------------------------------
    def _carry_out(
        self, entry: JournalEntry, candles: pd.DataFrame | None, samples: pd.DataFrame | None
    ) -> list[TrainingRecord]:
        """Do every step of a month close's plan; each is safe to repeat after a crash."""
        plan = entry.plan
        month = Month.parse(plan["month"])
        champion, challenger = plan["champion"], plan["challenger"]
        contest_run_id: str | None = None
        if plan["decision"] is not None:
            self._step("store.decision")
            self._ledger.record_decision(decision_from_json(plan["decision"]))
        if plan["contest_run"] is not None:
            self._step("mlflow.contest_run")
            contest_run_id = self._log_contest_once(plan)
            self._step("registry.contest_applied")
            if plan["promote"]:
                self._registry.set_status(challenger, VersionStatus.PRODUCTION)
                self._step("registry.promoted_status")
                self._registry.set_alias(CHAMPION, challenger)
                self._step("registry.champion_alias")
                self._registry.set_status(champion, VersionStatus.ARCHIVED)
            else:
                self._registry.set_status(challenger, VersionStatus.ARCHIVED)
            self._step("registry.archived_status")
            self._registry.delete_alias(CHALLENGER)
            self._step("registry.challenger_alias_removed")
            for version, tags in contest_version_tags(
                plan["month"], contest_run_id, plan["promote"], champion, challenger
            ).items():
                self._registry.tag_version(version, tags)
            self._step("registry.version_links")
        trained: list[TrainingRecord] = []
        if plan["train"] is not None:
            record = self._train_and_register(month, candles, samples, role=plan["train"])
            trained.append(record)
            self._step("registry.new_version_set_up")
        audit = self._audit(plan, trained)
        self._step("journal.finish")
        self._journal.finish(entry.id, audit, now=self._now())
        return trained

    def _log_contest_once(self, plan: dict[str, Any]) -> str:
        existing = self._registry.contest_runs(plan["month"])
        if existing and existing[0].status == "FINISHED":  # logged before the process died
            return existing[0].run_id
        run = plan["contest_run"]
        return self._registry.log_contest(  # or finish the one whose logging was cut off
            run_name=run["run_name"],
            params=run["params"],
            metrics=run["metrics"],
            tags=run["tags"],
            run_id=existing[0].run_id if existing else None,
        )

    def _audit(self, plan: dict[str, Any], trained: list[TrainingRecord]) -> list[AuditEntry]:
        """The champion change a month close made, if it made one."""
        effective = datetime.fromisoformat(plan["effective"])
        if plan["train"] == CHAMPION and trained:
            to_version, from_version = trained[0].version, None
            reason = plan["note"]
        elif plan["promote"]:
            to_version, from_version = plan["challenger"], plan["champion"]
            reason = plan["decision"]["reason"]
        else:
            return []
        return [
            AuditEntry(
                registered_model=self._name,
                changed_at=self._now(),
                sim_time=effective,
                actor=CONTEST_ACTOR,
                from_version=from_version,
                to_version=to_version,
                reason=f"{plan['month']}: {reason}",
                source="contest",
            )
        ]

    @staticmethod
    def _champion_after(plan: dict[str, Any], trained: list[TrainingRecord]) -> int | None:
        if plan["train"] == CHAMPION and trained:
            return trained[0].version
        champion: int | None = plan["challenger"] if plan["promote"] else plan["champion"]
        return champion

    def _train_and_register(
        self, month: Month, candles: pd.DataFrame | None, samples: pd.DataFrame | None, *, role: str
    ) -> TrainingRecord:
        """Train through ``month`` for ``role``, unless a version trained through it already exists."""
        existing = [v for v in self._registry.versions() if v.window.trained_through == str(month)]
        if existing:  # a restart after the version was registered: finish its set-up, train nothing
            info = existing[0]
        else:
            if candles is None or samples is None:
                candles = self._candles.read_candles(end=month.last_hour.to_pydatetime())
                samples = build_samples(candles, self._model.feature_set)
            self._step("train")
            with self._timings.measure("training"):
                forecaster, window, metrics = (
                    self._fit(month) if self._fit else train_through(samples, candles, month, self._model)
                )
            self._step("mlflow.register")
            info = self._registry.register(
                forecaster,
                window,
                params={**self._model.model_dump(), "role": role},
                metrics=metrics,
                example_features=samples.head(5),
                run_name=f"{role} trained through {month}",
                on_step=self._step,
            )
        window = info.window
        self._registry.describe_version(
            info.version,
            version_description(
                window.trained_through, role, window.train_start, window.train_end, window.train_rows
            ),
        )
        self._step("registry.described")
        status = VersionStatus.PRODUCTION if role == CHAMPION else VersionStatus.STAGING
        self._registry.set_status(info.version, status)
        self._step("registry.new_status")
        self._registry.set_alias(role, info.version)
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

    def _predict(self, contestant: ModelVersionInfo, rows: pd.DataFrame, month: Month) -> pd.DataFrame:
        """Forecast the month's hours with one contestant (``FORECAST_COLUMNS``), refusing if it was
        trained on any of them."""
        if not rows.empty and contestant.window.train_end >= rows["target_time"].min():
            raise FairnessError(
                f"version {contestant.version} was trained through {contestant.window.train_end} "
                f"and cannot be scored on {month}"
            )
        forecaster: Forecaster = self._load(contestant.version)
        if forecaster.feature_set != self._model.feature_set:
            own = build_samples(
                self._candles.read_candles(end=month.last_hour.to_pydatetime()), forecaster.feature_set
            ).pipe(month_samples, month)
            own = own.loc[own.index.isin(rows.index)]
            return _forecasts(forecaster, own).reindex(rows.index)
        return _forecasts(forecaster, rows)


def _forecasts(forecaster: Forecaster, rows: pd.DataFrame) -> pd.DataFrame:
    """``forecaster``'s point and interval for each of ``rows`` (nan bounds: a version with no interval)."""
    matrix = rows.loc[:, list(forecaster.feature_columns)].to_numpy(dtype=np.float64)
    predicted, lower, upper = forecaster.forecast_closes(matrix, rows["close"].to_numpy(dtype=np.float64))
    level = np.nan if forecaster.interval_level is None else forecaster.interval_level
    return pd.DataFrame(
        {"predicted_close": predicted, "lower_close": lower, "upper_close": upper, "interval_level": level},
        index=rows.index,
        columns=list(FORECAST_COLUMNS),
    )


def _served_frames(rows: pd.DataFrame, served: pd.DataFrame, tenure: pd.Series) -> list[pd.DataFrame]:
    """The champion's side of a month, one frame per version that served part of it."""
    return [
        _prediction_frame(rows.loc[tenure == version], served.loc[tenure == version], int(version), CHAMPION)
        for version in pd.unique(tenure)
    ]


def _tenure_hours(tenure: pd.Series) -> dict[int, int]:
    """Hours each version served, in the order they served."""
    counts = tenure.value_counts()
    return {int(version): int(counts[version]) for version in pd.unique(tenure)}


def _prediction_frame(rows: pd.DataFrame, forecasts: pd.DataFrame, version: int, role: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": rows.index,
            "target_time": rows["target_time"].to_numpy(),
            "actual_close": rows["actual_close"].to_numpy(),
            **{column: forecasts[column].to_numpy(dtype=float) for column in FORECAST_COLUMNS},
            "naive_close": rows["close"].to_numpy(),
            "naive_lower": rows["naive_lower"].to_numpy(),
            "naive_upper": rows["naive_upper"].to_numpy(),
            "model_version": version,
            "role": role,
        },
        columns=list(PREDICTION_COLUMNS),
    )
