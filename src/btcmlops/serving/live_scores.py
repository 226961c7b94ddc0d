"""Live scores: each served forecast scored once its target hour's close is in, exported to Prometheus.

The service follows its own prediction log (by row id) and the candles in memory. A logged forecast is
scored when it counts as live (``counts_as_live``: made before its target hour closed in sim time, for
an hour after the serving version's training window), carries an interval, and its target hour's close
and naive's interval for the same hour exist: its absolute error, absolute percentage error, interval
hit and interval score, beside naive's absolute error and interval score on that hour. One forecast per
target hour and version counts (the first logged; several clients may ask for the same hour), so every
sum and every ratio to naive is over the same hours. The scoring is the contest's own
(``btcmlops.contest.scoring``, naive's interval from ``btcmlops.model.naive_interval``).

Nothing here runs on the request path: ``LiveScores.update`` runs on a watcher thread after the store
watcher reads new candles, and the collector reads the totals at scrape time. A new process reads the
log from its first row, so the figures resume from what the store holds, not from zero.

The same reading keeps, for every target hour, the first forecast each version logged of it in time
(``LoggedPrediction.live``): which version served an hour live (``served_live_by``, a look back at an
in-sample hour) is then answered from memory, by ``counts_as_live`` with the versions' training windows.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from btcmlops.contest.scoring import (
    absolute_errors,
    absolute_percentage_errors,
    hourly_interval_scores,
    interval_hits,
)
from btcmlops.model import naive_close, naive_interval
from btcmlops.model.naive import NAIVE_WINDOW_HOURS
from btcmlops.registry import CHALLENGER, CHAMPION
from btcmlops.serving.snapshot import ServedModel, Snapshot, hour_number, hour_time, shadow_forecasts
from btcmlops.store import LoggedPrediction, PriceStore, counts_as_live

__all__ = [
    "WINDOW",
    "LiveScores",
    "LiveScoresCollector",
    "ScoredHour",
    "Tally",
    "counts_as_live",
    "score_forecasts",
    "served_live_by",
]

WINDOW = timedelta(days=7)
"""The sim-time window of the ``btcmlops_live_window_*`` gauges (label ``window="7d"``)."""
_WINDOW_LABEL = "7d"
_PAGE_ROWS = 10_000
_ID_OVERLAP = 200
"""How many row ids before the newest seen each look reads again. On MySQL a row with a smaller id can
commit after a larger one (two replicas flushing at once; a flush is about one flush interval of
forecasts, far fewer rows than this); a row read twice is a no-op (one per hour and version). A row
committed later still than that is scored at the next start, which reads the whole log."""

Key = tuple[int, int, str]
"""(target hour since the epoch, model version, role)."""


@dataclass(frozen=True)
class ScoredHour:
    """One forecast's live score (USDT, except the percentage error, a fraction, and the hit)."""

    target_hour: int
    absolute_error: float
    absolute_percentage_error: float
    naive_absolute_error: float
    interval_hit: bool
    interval_score: float
    naive_interval_score: float


def score_forecasts(rows: list[LoggedPrediction], candles: pd.DataFrame) -> list[ScoredHour | None]:
    """Score each logged forecast (with its interval) against ``candles`` (None: no actual close or no
    naive interval for its hour).

    ``candles`` are canonical (``open_time``, ``close``) and must hold every row's target hour and the
    720 hours before its hour T for naive's interval.
    """
    if not rows:
        return []
    closes = pd.Series(
        candles["close"].to_numpy(dtype=np.float64), index=pd.DatetimeIndex(candles["open_time"])
    )
    actual = closes.reindex(pd.DatetimeIndex([row.target_time for row in rows])).to_numpy()
    predicted = np.array([row.predicted_close for row in rows])
    lower = np.array([row.lower_close for row in rows], dtype=np.float64)
    upper = np.array([row.upper_close for row in rows], dtype=np.float64)
    levels = np.array([row.interval_level for row in rows], dtype=np.float64)
    naive_lower, naive_upper = np.full(len(rows), np.nan), np.full(len(rows), np.nan)
    scores, naive_scores = np.full(len(rows), np.nan), np.full(len(rows), np.nan)
    at = pd.DatetimeIndex([row.timestamp for row in rows])
    for level in np.unique(levels):
        mine = levels == level
        naive_lower[mine], naive_upper[mine] = naive_interval(candles, at[mine], float(level))
        scores[mine] = hourly_interval_scores(actual[mine], lower[mine], upper[mine], float(level))
        naive_scores[mine] = hourly_interval_scores(
            actual[mine], naive_lower[mine], naive_upper[mine], float(level)
        )
    errors = absolute_errors(actual, predicted)
    percentage = absolute_percentage_errors(actual, predicted)
    naive_errors = absolute_errors(actual, naive_close([row.last_close for row in rows]))
    hits = interval_hits(actual, lower, upper)
    scorable = np.isfinite(actual) & np.isfinite(naive_lower) & np.isfinite(naive_upper)
    return [
        ScoredHour(
            target_hour=hour_number(row.target_time),
            absolute_error=float(errors[i]),
            absolute_percentage_error=float(percentage[i]),
            naive_absolute_error=float(naive_errors[i]),
            interval_hit=bool(hits[i]),
            interval_score=float(scores[i]),
            naive_interval_score=float(naive_scores[i]),
        )
        if scorable[i]
        else None
        for i, row in enumerate(rows)
    ]


def served_live_by(rows: list[LoggedPrediction], training_ends: dict[int, datetime]) -> int | None:
    """The version whose forecast among ``rows`` (one target hour's, oldest first) counts as live, the
    first if several (None: none; a version whose window is not in ``training_ends`` does not count)."""
    live = [row.model_version for row in rows if counts_as_live(row, training_ends.get(row.model_version))]
    return live[0] if live else None


def _with_interval(row: LoggedPrediction) -> bool:
    bounds = (row.interval_level, row.lower_close, row.upper_close)
    return all(value is not None and math.isfinite(value) for value in bounds)


def _candles_of(snapshot: Snapshot, first_hour: int, last_hour: int) -> pd.DataFrame:
    """The snapshot's closes in [first_hour, last_hour] as canonical candles (what naive's interval reads)."""
    start, stop = np.searchsorted(snapshot.hours, [first_hour, last_hour + 1])
    hours = snapshot.hours[start:stop]
    return pd.DataFrame(
        {
            "open_time": pd.to_datetime(hours * 3600, unit="s", utc=True),
            "close": snapshot.closes[start:stop],
        }
    )


@dataclass(frozen=True)
class Tally:
    """One (version, role)'s scored hours, oldest target first, and their totals (what a scrape reads)."""

    hours: tuple[ScoredHour, ...]
    targets: tuple[int, ...]
    """Each hour's target hour (hours since the epoch), ascending: a window is found by bisection."""
    totals: dict[str, float]

    def window(self, start: datetime, end: datetime) -> tuple[ScoredHour, ...]:
        """The hours whose target time is in (start, end]."""
        first = bisect.bisect_right(self.targets, math.floor(start.timestamp() / 3600))
        last = bisect.bisect_right(self.targets, math.floor(end.timestamp() / 3600))
        return self.hours[first:last]


def _tally(by_hour: dict[int, ScoredHour]) -> Tally:
    hours = tuple(by_hour[hour] for hour in sorted(by_hour))
    return Tally(hours, tuple(hour.target_hour for hour in hours), _totals(hours))


class LiveScores:
    """The scored hours of every (version, role), kept up to date from the prediction log.

    ``update`` runs on one thread (the live scorer's); a scrape reads ``tallies``, an immutable view
    replaced in one reference after each round that scored something.
    """

    def __init__(self) -> None:
        self._after_id = 0
        self._pending: dict[Key, LoggedPrediction] = {}
        """Forecasts waiting for their version's training window, their actual close or both."""
        self._scored: dict[tuple[int, str], dict[int, ScoredHour]] = {}
        """(version, role) -> target hour -> its score."""
        self.tallies: dict[tuple[int, str], Tally] = {}
        """(version, role) -> its tally, as of the last round."""
        self.last_forecast_hour: int | None = None
        """The newest target hour of a logged forecast that counts as live."""
        self._last_answered_hour: int | None = None
        """The same, noted by the forecast route as it answers (this process's forecasts only): the log
        is flushed every ``log_flush_interval_s`` and read a round later, seconds that are tens of sim
        hours at the live stack's speeds, and the stalled-pipeline alert must not read that as a gap."""
        self.last_scored_hour: int | None = None
        self._shadow_through: dict[int, int] = {}
        """Challenger version -> the newest hour T its shadow forecast was scored from (or found
        unscoreable): the next round starts after it."""
        self._made_in_time: dict[int, dict[int, LoggedPrediction]] = {}
        """Target hour -> version -> its first forecast of that hour made in time (``row.live``), read
        from the log or noted as answered: who served an hour live, without a read of the store."""
        self._made_in_time_lock = threading.Lock()
        """Guards it between the live scorer's thread (the log) and the forecast route (its answers)."""
        self.log_read = False
        """Whether the whole log has been read once (before: ``made_in_time`` knows only this process's
        answers since it started)."""

    def note_live_forecast(self, target_hour: int) -> None:
        """A live forecast of ``target_hour`` was just answered (called on the forecast's path: O(1))."""
        if self._last_answered_hour is None or target_hour > self._last_answered_hour:
            self._last_answered_hour = target_hour

    def note_made_in_time(self, row: LoggedPrediction) -> None:
        """Keep ``row`` if it is its version's first forecast of its target hour made in time (O(1):
        called on the forecast's path as it is logged, and for each row read from the log)."""
        if not row.live:
            return
        with self._made_in_time_lock:
            self._made_in_time.setdefault(hour_number(row.target_time), {}).setdefault(row.model_version, row)

    def made_in_time(self, target_hour: int) -> list[LoggedPrediction]:
        """Each version's first forecast of ``target_hour`` made in time, in the order first seen."""
        with self._made_in_time_lock:
            return list(self._made_in_time.get(target_hour, {}).values())

    @property
    def newest_forecast_hour(self) -> int | None:
        """The newest target hour of a live forecast, logged (read back from the store) or answered here."""
        hours = [hour for hour in (self.last_forecast_hour, self._last_answered_hour) if hour is not None]
        return max(hours) if hours else None

    def update(
        self,
        store: PriceStore,
        snapshot: Snapshot,
        training_ends: Callable[[set[int]], dict[int, datetime]],
    ) -> int:
        """Read what the log holds since the last look and score what can be; the hours newly scored.

        ``training_ends`` gives each version's last training target hour (a version it cannot tell
        about yet stays pending). Reads the whole log on the first call: a restart resumes.
        """
        while True:
            rows = store.read_predictions_logged_after(max(self._after_id - _ID_OVERLAP, 0), _PAGE_ROWS)
            fresh = [row for row in rows if row.id is not None and row.id > self._after_id]
            for row in rows:
                self.note_made_in_time(row)
                self._take(row)
            if fresh:
                self._after_id = max(row.id for row in fresh if row.id is not None)
            if len(fresh) < _PAGE_ROWS - _ID_OVERLAP:
                break
        self.log_read = True
        return self._score_pending(snapshot, training_ends)

    def score_shadow(self, snapshot: Snapshot, challenger: ServedModel | None) -> int:
        """Score the challenger's shadow forecasts whose target hour closed; the hours newly scored.

        Its forecasts are not logged: they are a deterministic function of the version and the candles
        up to T, so they are made again here from the snapshot (``shadow_forecasts``, as ``/shadow``
        gives them), for hours T at or after its last training target only (out of sample), and scored
        by ``score_forecasts`` like the champion's. A new process makes them again from the candles in
        memory: the challenger's figures resume from the store. One round per version scores every
        closed hour not scored yet; an hour whose candle is missing is passed over.
        """
        if challenger is None or snapshot.latest_hour is None:
            return 0
        version = challenger.info.version
        first = max(self._shadow_through.get(version, -1) + 1, hour_number(challenger.info.window.train_end))
        last = snapshot.latest_hour - 1  # the newest hour T whose target hour's candle is in memory
        if last < first:
            return 0
        hours, forecasts = shadow_forecasts(snapshot, challenger, first, last)
        self._shadow_through[version] = last
        level = challenger.forecaster.interval_level
        if len(hours) == 0 or level is None:
            return 0
        now = hour_time(last + 1)
        closes = snapshot.closes[np.searchsorted(snapshot.hours, hours)]  # every hour is in memory
        rows = [
            LoggedPrediction(
                timestamp=hour_time(int(hour)),
                target_time=hour_time(int(hour) + 1),
                predicted_close=float(forecasts.predicted[i]),
                last_close=float(closes[i]),
                model_version=version,
                served_at=now,
                interval_level=level,
                lower_close=float(forecasts.lower[i]),
                upper_close=float(forecasts.upper[i]),
            )
            for i, hour in enumerate(hours)
        ]
        scores = score_forecasts(rows, _candles_of(snapshot, int(hours[0]) - NAIVE_WINDOW_HOURS, last + 1))
        scored = self._scored.setdefault((version, CHALLENGER), {})
        newly = 0
        for hour, result in zip(hours, scores, strict=True):
            if result is not None and result.target_hour not in scored:
                scored[int(hour) + 1] = result
                newly += 1
        if newly:
            self.tallies = {**self.tallies, (version, CHALLENGER): _tally(scored)}
        return newly

    def _take(self, row: LoggedPrediction) -> None:
        if not row.live or not _with_interval(row):
            return  # a look back, or logged before intervals: never a live score
        key = (hour_number(row.target_time), row.model_version, CHAMPION)
        if key[0] not in self._scored.get((row.model_version, CHAMPION), {}):
            self._pending.setdefault(key, row)

    def _score_pending(
        self, snapshot: Snapshot, training_ends: Callable[[set[int]], dict[int, datetime]]
    ) -> int:
        if not self._pending:
            return 0
        ends = training_ends({version for _, version, _ in self._pending})
        ready: list[tuple[Key, LoggedPrediction]] = []
        for key, row in list(self._pending.items()):
            end = ends.get(row.model_version)
            if end is None:
                continue  # its window is not known yet: asked again next time
            if not counts_as_live(row, end):
                del self._pending[key]
                continue
            self.last_forecast_hour = max(self.last_forecast_hour or key[0], key[0])
            if snapshot.latest_hour is not None and key[0] <= snapshot.latest_hour:
                ready.append((key, row))
        if not ready:
            return 0
        first = min(hour_number(row.timestamp) for _, row in ready) - NAIVE_WINDOW_HOURS
        last = max(key[0] for key, _ in ready)
        scores = score_forecasts([row for _, row in ready], _candles_of(snapshot, first, last))
        changed: set[tuple[int, str]] = set()
        newly = 0
        for (key, _), scored in zip(ready, scores, strict=True):
            if scored is None and snapshot.index_of(key[0]) is None:
                continue  # its candle is missing (a gap): a late candle may still bring it
            del self._pending[key]
            if scored is not None:  # else no naive interval for its hour: nothing comparable
                self._scored.setdefault((key[1], key[2]), {})[key[0]] = scored
                changed.add((key[1], key[2]))
                newly += 1
                self.last_scored_hour = max(self.last_scored_hour or key[0], key[0])
        if changed:
            self.tallies = {**self.tallies, **{key: _tally(self._scored[key]) for key in changed}}
        return newly


def _totals(hours: tuple[ScoredHour, ...]) -> dict[str, float]:
    """Exact sums (``math.fsum``: the same whatever order the hours were scored in, so a restarted
    service exports the same totals as the one before it)."""
    return {
        "scored_hours": float(len(hours)),
        "absolute_error_usdt": math.fsum(h.absolute_error for h in hours),
        "naive_absolute_error_usdt": math.fsum(h.naive_absolute_error for h in hours),
        "absolute_percentage_error": math.fsum(h.absolute_percentage_error for h in hours),
        "interval_hits": float(sum(h.interval_hit for h in hours)),
        "interval_score_usdt": math.fsum(h.interval_score for h in hours),
        "naive_interval_score_usdt": math.fsum(h.naive_interval_score for h in hours),
    }


_COUNTERS = {
    "scored_hours": "Live forecasts scored: target hour closed, made in time, after the training window.",
    "absolute_error_usdt": "Sum of |forecast - actual close| over the scored hours, USDT.",
    "naive_absolute_error_usdt": "Sum of naive's |last close - actual close| over the same hours, USDT.",
    "absolute_percentage_error": "Sum of |forecast - actual| / actual over the scored hours (a ratio).",
    "interval_hits": "Scored hours whose actual close fell inside the served interval (bounds inside).",
    "interval_score_usdt": "Sum of the served interval's interval score (Winkler's) over those hours, USDT.",
    "naive_interval_score_usdt": "Sum of naive's interval score (trailing 30 days) over those hours, USDT.",
}
_WINDOW_GAUGES = {
    "absolute_error_usdt": (
        "absolute_error_usdt",
        "Mean absolute error over the last 7 sim days' scored hours, USDT.",
    ),
    "naive_absolute_error_usdt": (
        "naive_absolute_error_usdt",
        "Naive's mean absolute error over the same hours, USDT.",
    ),
    "coverage_ratio": ("interval_hits", "Share of the last 7 sim days' scored hours inside the interval."),
    "interval_score_usdt": (
        "interval_score_usdt",
        "Mean interval score over the last 7 sim days' scored hours, USDT.",
    ),
    "naive_interval_score_usdt": (
        "naive_interval_score_usdt",
        "Naive's mean interval score over the same hours, USDT.",
    ),
}
_PREFIX = "btcmlops_live"


@dataclass(frozen=True)
class WindowScores:
    """One (version, role)'s live record over the last 7 sim days: what the window gauges export and
    ``GET /monitoring/scores`` answers (means over ``scored_hours``; none when it is 0)."""

    model_version: int
    role: str
    scored_hours: int
    means: dict[str, float]
    """Keyed as the window gauges' names (``absolute_error_usdt``, ``coverage_ratio``, ...)."""


def window_scores(tallies: dict[tuple[int, str], Tally], now: datetime) -> list[WindowScores]:
    """Every (version, role)'s scores over the target hours in (now - 7 days, now], by version and role."""
    windows = []
    for (version, role), tally in sorted(tallies.items()):
        recent = tally.window(now - WINDOW, now)
        sums = _totals(recent) if recent else {}
        means = {name: sums[summed] / len(recent) for name, (summed, _) in _WINDOW_GAUGES.items() if recent}
        windows.append(WindowScores(version, role, len(recent), means))
    return windows


class LiveScoresCollector(Collector):
    """``btcmlops_live_*``, the sim time and the served interval level, read at scrape time."""

    def __init__(
        self,
        scores: LiveScores,
        *,
        sim_now: Callable[[], datetime | None],
        data_now: Callable[[], datetime | None],
        interval_level: Callable[[], float | None],
    ) -> None:
        """``sim_now``: the sim clock's now (None: no clock); ``data_now``: the close of the newest candle,
        where the window ends without a clock (a replay's store served by hand; None: no candle yet);
        ``interval_level``: the serving champion's (None: no model)."""
        self._scores = scores
        self._sim_now = sim_now
        self._data_now = data_now
        self._interval_level = interval_level

    def describe(self) -> Iterable[Metric]:
        return self._families({}, None, None)

    def collect(self) -> Iterable[Metric]:
        sim_now = self._sim_now()
        return self._families(self._scores.tallies, sim_now, sim_now or self._data_now())

    def _families(
        self, tallies: dict[tuple[int, str], Tally], sim_now: datetime | None, now: datetime | None
    ) -> list[Metric]:
        """Every family; the window gauges over target hours in (now - 7 days, now]."""
        labels = ["model_version", "role"]
        counters = {
            name: CounterMetricFamily(f"{_PREFIX}_{name}", text, labels=labels)
            for name, text in _COUNTERS.items()
        }
        window_labels = [*labels, "window"]
        window_hours = GaugeMetricFamily(
            f"{_PREFIX}_window_scored_hours", "Scored hours whose target is within the last 7 sim days.",
            labels=window_labels,
        )  # fmt: skip
        window = {
            name: GaugeMetricFamily(f"{_PREFIX}_window_{name}", text, labels=window_labels)
            for name, (_, text) in _WINDOW_GAUGES.items()
        }
        for (version, role), tally in sorted(tallies.items()):
            for name, value in tally.totals.items():
                counters[name].add_metric([str(version), role], value)
        for scores in window_scores(tallies, now) if now is not None else []:
            values = [str(scores.model_version), scores.role, _WINDOW_LABEL]
            window_hours.add_metric(values, float(scores.scored_hours))
            for name, mean in scores.means.items():
                window[name].add_metric(values, mean)
        families: list[Metric] = [*counters.values(), window_hours, *window.values()]
        if sim_now is not None:
            families.append(
                GaugeMetricFamily(
                    "btcmlops_sim_time_seconds",
                    "The sim clock's now, unix seconds.",
                    value=sim_now.timestamp(),
                )
            )
        for name, hour, text in (
            ("scored", self._scores.last_scored_hour, "Newest target hour scored live, unix seconds."),
            (
                "forecast",
                self._scores.newest_forecast_hour,
                "Newest target hour of a live forecast answered or logged, unix seconds.",
            ),
        ):
            if hour is not None:
                families.append(
                    GaugeMetricFamily(
                        f"{_PREFIX}_last_{name}_target_timestamp_seconds", text, value=hour * 3600.0
                    )
                )
        level = self._interval_level()
        if level is not None:
            families.append(
                GaugeMetricFamily(
                    "btcmlops_model_interval_level", "The serving champion's interval level.", value=level
                )
            )
        return families
