"""The running contest, live: the shadow month in progress scored as its hours close.

The shadow month in progress is the month after the newest one the trainer closed (the journal's), in
sim time: the one the next decision is about. Its standing is ``Contest.standing``: the trainer's own
rows, its champion side (what served each hour, by the champion audit), the challenger's forecasts and
``btcmlops.contest.judging.judge``, on the target hours closed so far. At the month's end that is the
decision the trainer records, to the cent, because it is the same code on the same candles; nothing here
scores anything itself. A month already decided is judged again on request from the store (its
contestants from the decision row), which is how the figures at a month's end are checked without
racing the close.

It runs on the live scorer's thread after each round (never on the request path), only when the month,
the newest candle or a contestant changed. A challenger that fails to load or to forecast only leaves an
error here and in ``btcmlops_shadow_failures_total``: the champion never waits on it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from btcmlops.calendar import Month
from btcmlops.contest.contest import Contest
from btcmlops.contest.records import MonthStanding
from btcmlops.model import Forecaster
from btcmlops.registry import ModelRegistry, ModelVersionInfo
from btcmlops.serving.snapshot import ServedModel, hour_time
from btcmlops.settings import ContestSettings, ModelSettings
from btcmlops.store import PriceStore

__all__ = ["LiveContest", "LiveContestCollector", "LiveStanding", "NoSuchContestError"]

_LOADED_KEPT = 4
"""Versions other than the champion and the challenger in memory kept loaded (a champion changed
inside the month, a month decided earlier asked for again)."""
HeldModels = Callable[[], tuple[ServedModel | None, ServedModel | None]]
"""The service's serving champion and challenger in shadow, as loaded (None: none)."""


class NoSuchContestError(LookupError):
    """A month that is neither in progress nor decided: there is no contest to show."""


@dataclass(frozen=True)
class LiveStanding:
    """A shadow month's contest as it stands, or why there is none to show yet."""

    month: Month
    state: str
    """``in progress`` (hours left), ``closing`` (every hour closed, not decided yet) or ``decided``."""
    standing: MonthStanding | None
    note: str | None
    """Why there are no figures (no challenger in shadow, too few hours); None when there are."""
    computed_at: datetime


class LiveContest:
    """The shadow month in progress, judged after each round of the live scorer, and decided months."""

    def __init__(
        self,
        model: ModelSettings,
        rule: ContestSettings,
        registry: ModelRegistry,
        store: PriceStore,
        held: HeldModels,
        candles: Callable[[], pd.DataFrame] | None = None,
        *,
        every_s: float = 0.0,
    ) -> None:
        """``candles``: the service's candles in memory, as read from ``store`` (default: read from
        ``store`` at each judgement, which costs more than the rest of it); ``every_s``: the shortest
        wall time between two judgements while only new hours arrive."""
        self.rule = rule
        self._candles = candles
        self._every_s = every_s
        self._judged_at = -math.inf
        self._registry = registry
        self._store = store
        self._held = held
        self._contest = Contest(model, rule, registry, store, store, load=self._load)
        self._lock = threading.Lock()
        self._loaded: dict[int, Forecaster] = {}
        self._versions: dict[int, ModelVersionInfo] = {}
        self._key: tuple[object, ...] | None = None
        self._decided: dict[str, LiveStanding] = {}
        self.current: LiveStanding | None = None
        """The month in progress as of the last round (None before the first)."""
        self.error: str | None = None
        """Why the last round could not judge the month (the challenger failed to forecast...)."""

    def month_in_progress(self, newest_hour: int) -> Month:
        """The first month the trainer has not closed (the journal's rule, as the trainer resumes by); the
        month of ``newest_hour`` before any."""
        return self._store.journal.first_open_month(
            self._registry.model_name, Month.of(pd.Timestamp(hour_time(newest_hour)))
        )

    def update(self, newest_hour: int | None) -> None:
        """Judge the month in progress on its hours closed by ``newest_hour`` (the newest candle in memory).

        Cheap when nothing changed (same month, candle and contestants). Raises what judging raised (the
        caller counts it as a shadow failure); ``current`` then keeps the last standing.
        """
        if newest_hour is None:
            return
        champion, challenger = self._held()
        month = self.month_in_progress(newest_hour)
        key = (
            month,
            newest_hour,
            None if champion is None else champion.info.version,
            None if challenger is None else challenger.info.version,
        )
        if key == self._key:
            return
        if (
            self._key is not None
            and key[0] == self._key[0]
            and key[2:] == self._key[2:]
            and time.monotonic() - self._judged_at < self._every_s
        ):
            return  # only new hours: judged again once the interval has passed
        through = pd.Timestamp(hour_time(newest_hour))
        note = _why_not_judged(month, champion, challenger)
        if note is not None or champion is None or challenger is None:
            expected = month.hours
            after = math.ceil((month.next().start - through) / pd.Timedelta(hours=1)) - 1
            left = max(0, min(expected, after))
            self.current = LiveStanding(month, _state(left), None, note, datetime.now(UTC))
        else:
            standing = self._judge(month, champion.info.version, challenger.info.version, through)
            self.current = self._as_live(standing, "in progress")
        self._key = key
        self._judged_at = time.monotonic()
        self.error = None

    def of_month(self, month: Month) -> LiveStanding:
        """``month``'s contest: the one in progress as of the last round, or a decided one judged again
        from the store with the contestants its decision names (the trainer's figures, to the cent).

        Raises:
            NoSuchContestError: ``month`` is neither in progress nor decided.
        """
        current = self.current
        if current is not None and current.month == month:
            return current
        if str(month) in self._decided:
            return self._decided[str(month)]
        decision = next(
            (
                row
                for row in self._store.list_decisions(self._registry.model_name)
                if Month.of(pd.Timestamp(row.eval_start)) == month
            ),
            None,
        )
        if decision is None:
            progress = "" if current is None else f" (in progress: {current.month})"
            raise NoSuchContestError(f"no contest on {month}: neither decided nor in progress{progress}")
        standing = self._judge(month, decision.champion_version, decision.challenger_version, None)
        live = self._as_live(standing, "decided")
        self._decided[str(month)] = live
        return live

    def _judge(
        self, month: Month, champion: int, challenger: int, through: pd.Timestamp | None
    ) -> MonthStanding:
        candles = None if self._candles is None else self._candles()
        if candles is not None and through is None and not _holds_hour(candles, month.last_hour):
            # A decided month not all in memory yet (the service's first read of the candles is under
            # way): judged on part of it, it would be kept with figures the trainer never decided on.
            candles = None  # read from the store, as the trainer did
        with self._lock:  # the scorer's thread and a request's may both load a version
            if not {champion, challenger} <= self._versions.keys():
                self._refresh_versions()
            try:
                return self._contest.standing(
                    month,
                    champion=champion,
                    challenger=challenger,
                    through=through,
                    versions=self._versions,
                    candles=candles,
                )
            except KeyError:  # a version the champion audit names that this process had not seen
                self._refresh_versions()
                return self._contest.standing(
                    month,
                    champion=champion,
                    challenger=challenger,
                    through=through,
                    versions=self._versions,
                    candles=candles,
                )

    def _refresh_versions(self) -> None:
        self._versions = {info.version: info for info in self._registry.versions()}

    def _as_live(self, standing: MonthStanding, state: str) -> LiveStanding:
        note = (
            None
            if standing.judgement is not None
            else f"{standing.hours} hour(s) scored: the tests need a few more"
        )
        if state != "decided":
            state = _state(standing.hours_left)
        return LiveStanding(standing.month, state, standing, note, datetime.now(UTC))

    def _load(self, version: int) -> Forecaster:
        """The forecaster of ``version``: the one serving or in shadow if it is either, else loaded
        once and kept (a few)."""
        for model in self._held():
            if model is not None and model.info.version == version:
                return model.forecaster
        if version not in self._loaded:
            if len(self._loaded) >= _LOADED_KEPT:
                self._loaded.pop(next(iter(self._loaded)))
            self._loaded[version] = self._registry.load(version)
        return self._loaded[version]


def _state(hours_left: int) -> str:
    return "in progress" if hours_left > 0 else "closing"


def _why_not_judged(month: Month, champion: ServedModel | None, challenger: ServedModel | None) -> str | None:
    if champion is None:
        return "no champion yet"
    if challenger is None:
        return f"no challenger in shadow during {month}"
    if challenger.info.window.train_end >= month.start:
        return (
            f"the challenger v{challenger.info.version} was trained through "
            f"{challenger.info.window.trained_through}: its shadow month has not begun"
        )
    return None


_ROLES = ("champion", "challenger", "naive")


class LiveContestCollector(Collector):
    """``btcmlops_contest_live_*``: the month in progress's standing, read at scrape time."""

    def __init__(self, contest: LiveContest) -> None:
        self._contest = contest

    def describe(self) -> Iterable[Metric]:
        return _families(None)

    def collect(self) -> Iterable[Metric]:
        return _families(self._contest.current)


def _families(live: LiveStanding | None) -> list[Metric]:
    prefix = "btcmlops_contest_live"
    month = ["month"]
    hours = GaugeMetricFamily(
        f"{prefix}_hours_scored", "Hours of the shadow month in progress scored so far.", labels=month
    )
    left = GaugeMetricFamily(
        f"{prefix}_hours_left", "Target hours of the shadow month in progress not closed yet.", labels=month
    )
    versions = GaugeMetricFamily(
        f"{prefix}_model_version",
        "Versions in the contest: the champion at its close, the challenger in shadow.",
        labels=["month", "role"],
    )
    mae = GaugeMetricFamily(
        f"{prefix}_mean_absolute_error_usdt",
        "MAE so far on the month's scored hours (role: champion side as served, challenger, naive), USDT.",
        labels=["month", "role"],
    )
    interval = GaugeMetricFamily(
        f"{prefix}_interval_score_usdt",
        "Mean interval score so far on the same hours, USDT.",
        labels=["month", "role"],
    )
    coverage = GaugeMetricFamily(
        f"{prefix}_coverage_ratio",
        "Share of the same hours whose close fell inside the interval.",
        labels=["month", "role"],
    )
    statistic = GaugeMetricFamily(
        f"{prefix}_dm_statistic",
        "Diebold-Mariano statistic so far, challenger against the champion side (negative: challenger's "
        "loss lower); test: mae or interval_score.",
        labels=["month", "test"],
    )
    p_value = GaugeMetricFamily(
        f"{prefix}_dm_p_value",
        "One-sided p-value of that test so far (the challenger's loss is lower).",
        labels=["month", "test"],
    )
    promote = GaugeMetricFamily(
        f"{prefix}_would_promote",
        "1 if the contest's rule would promote the challenger on the hours so far, else 0.",
        labels=month,
    )
    families: list[Metric] = [hours, left, versions, mae, interval, coverage, statistic, p_value, promote]
    if live is None or live.standing is None:
        return families
    standing, label = live.standing, str(live.month)
    hours.add_metric([label], float(standing.hours))
    left.add_metric([label], float(standing.hours_left))
    versions.add_metric([label, "champion"], float(standing.champion_version))
    versions.add_metric([label, "challenger"], float(standing.challenger_version))
    judgement = standing.judgement
    if judgement is None:
        return families
    for role, scores, interval_scores in zip(
        _ROLES,
        (judgement.champion, judgement.challenger, judgement.naive),
        (judgement.champion_interval, judgement.challenger_interval, judgement.naive_interval),
        strict=True,
    ):
        mae.add_metric([label, role], scores.mae)
        if interval_scores is not None:
            interval.add_metric([label, role], interval_scores.interval_score)
            coverage.add_metric([label, role], interval_scores.coverage)
    for test_name, test in judgement.tests.items():
        statistic.add_metric([label, test_name], test.statistic)
        p_value.add_metric([label, test_name], test.p_value)
    promote.add_metric([label], float(judgement.decision.promote))
    return families


def _holds_hour(candles: pd.DataFrame, hour: pd.Timestamp) -> bool:
    """Whether ``candles`` reach ``hour`` (a month's last: every hour of it that the store holds)."""
    return not candles.empty and candles["open_time"].max() >= hour
