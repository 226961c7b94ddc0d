"""``TrainerService``: closes each month with the contest once sim time has passed its end and the
store holds all of it.

It drives the very ``Contest`` the replay drives (one implementation of the rule). The contest keeps
its state in the registry and the store, so a restarted trainer closes the months it had not finished
and no version is registered twice; if it falls behind it closes the missed months in order.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from btcmlops.calendar import Month
from btcmlops.clock import last_closed_hour
from btcmlops.contest import Contest, MonthOutcome
from btcmlops.store import PriceStore

logger = logging.getLogger(__name__)


def last_closed_month(sim_now: datetime) -> Month:
    """The newest month whose last hour has closed at ``sim_now``."""
    return last_month_through(last_closed_hour(sim_now))


def last_month_through(hour: datetime) -> Month:
    """The newest month whose last hour is at or before ``hour`` (the open time of a candle)."""
    month = Month.of(hour)
    return month if hour >= month.last_hour.to_pydatetime() else month.previous()


def due_month(sim_now: datetime, newest_stored: datetime) -> Month:
    """The newest month that may be closed: ended in sim time *and* whole in the store.

    The feed writes an hour's candle a moment after sim time closes it, so at a month's end the clock
    is ahead of the store; closing on the clock alone would score and train on a month without its last
    hours, and decide differently from ``btcmlops simulate`` depending on which process woke first.
    """
    return min(last_closed_month(sim_now), last_month_through(newest_stored))


class TrainerService:
    """Follows the sim clock and closes every month that has ended, in order."""

    def __init__(self, contest: Contest, store: PriceStore, *, interval_s: float = 1.0) -> None:
        self._contest = contest
        self._store = store
        self._interval_s = interval_s
        self._next: Month | None = None

    def step(self, real_now: datetime) -> list[MonthOutcome]:
        """Close every month that has ended in sim time and not been closed by this process yet."""
        clock = self._store.read_clock()
        newest = self._store.latest_candle_time()
        if clock is None or newest is None:
            return []
        due = due_month(clock.sim_now(real_now), newest)
        if self._next is None:  # (re)started: resume after what the registry says was closed
            first = self._store.earliest_candle_time()
            assert first is not None  # the store holds a candle: ``newest``
            self._next = self._contest.first_open_month(Month.of(first))
        if due < self._next:
            return []
        behind = (due.year - self._next.year) * 12 + due.month - self._next.month + 1
        if behind > 1:
            logger.info(
                "catching up: %d months have closed since the last round (%s to %s)", behind, self._next, due
            )
        outcomes = []
        while self._next <= due:
            outcome = self._contest.close_month(self._next)
            _log(outcome)
            outcomes.append(outcome)
            self._next = self._next.next()
        return outcomes

    def run(self, stop: threading.Event, *, on_round: Callable[[], None] | None = None) -> None:
        """Step every interval until ``stop`` is set; ``on_round`` is a heartbeat after every step."""
        while not stop.is_set():
            self.step(datetime.now(UTC))
            if on_round is not None:
                on_round()
            stop.wait(self._interval_s)


def _log(outcome: MonthOutcome) -> None:
    if outcome.already_closed:
        logger.info("%s was closed before (restart): nothing to do", outcome.month)
        return
    for trained in outcome.trained:
        logger.info(
            "%s: trained v%d (%s) through %s",
            outcome.month,
            trained.version,
            trained.role,
            trained.trained_through,
        )
    if outcome.contest is not None:
        verdict = "promoted" if outcome.contest.decision.promote else "archived"
        logger.info(
            "%s: v%d %s — %s",
            outcome.month,
            outcome.contest.challenger_version,
            verdict,
            outcome.contest.decision.reason,
        )
