"""``TrainerService``: closes each month with the contest once sim time has passed its end.

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


def last_closed_month(sim_now: datetime) -> Month | None:
    """The newest month whose last hour has closed at ``sim_now`` (None before any has)."""
    closed_hour = last_closed_hour(sim_now)
    month = Month.of(closed_hour)
    return month if closed_hour == month.last_hour.to_pydatetime() else month.previous()


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
        first = self._store.earliest_candle_time()
        if clock is None or first is None:
            return []
        due = last_closed_month(clock.sim_now(real_now))
        if self._next is None:  # (re)started: resume after what the registry says was closed
            self._next = self._contest.first_open_month(Month.of(first))
        if due is None or due < self._next:
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
