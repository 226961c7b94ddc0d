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
from datetime import UTC, datetime, timedelta

from btcmlops.calendar import (
    Month,
    end_of_data,
    last_closed_month,
    last_complete_month_by,
    last_month_through,
)
from btcmlops.clock import SimClock, month_end
from btcmlops.contest.contest import Contest
from btcmlops.contest.records import MonthOutcome
from btcmlops.contest.rule import outcome_of
from btcmlops.redaction import redact
from btcmlops.registry import ModelRegistry
from btcmlops.retry import Backoff, keep_trying, retrying
from btcmlops.services.metrics import LEASE_NAME, TrainerMetrics
from btcmlops.settings import TrainerSettings
from btcmlops.store import PriceStore, this_process

logger = logging.getLogger(__name__)


def due_month(sim_now: datetime, newest_stored: datetime) -> Month:
    """The newest month that may be closed: ended in sim time *and* whole in the store.

    The feed writes an hour's candle a moment after sim time closes it, so at a month's end the clock
    is ahead of the store; closing on the clock alone would score and train on a month without its last
    hours, and decide differently from ``btcmlops simulate`` depending on which process woke first.
    """
    return min(last_closed_month(sim_now), last_month_through(newest_stored))


def wait_for_registry(
    tracking_uri: str,
    experiment: str,
    registered_model: str,
    stop: threading.Event,
    *,
    artifact_location: str | None = None,
    max_wait_s: float = 30.0,
) -> ModelRegistry | None:
    """Open the registry once MLflow answers, retrying with a doubling wait; None if stopped first.

    The MLflow server may still be starting (compose, `make stack`) or another trainer creating the
    experiment: the trainer waits, and says why, instead of exiting (unless the configuration is wrong).
    """
    return retrying(
        lambda: ModelRegistry(
            tracking_uri, experiment, registered_model, artifact_location=artifact_location
        ),
        stop,
        Backoff(1.0, max_wait_s),
        f"opening the MLflow registry at {redact(tracking_uri)}",
    )


class LeaseLostError(RuntimeError):
    """Another trainer took the lease (this one stalled past its expiry): stop changing the registry."""


class TrainerService:
    """Follows the sim clock and closes every month that has ended, in order; one trainer at a time.

    The lease in the store makes a second trainer wait (and say why) instead of registering versions
    beside the first; a trainer that dies stops renewing it, and the next one takes over once it has
    expired, reconciling whatever the dead one left half-done before it closes a month.
    """

    def __init__(
        self,
        contest: Contest,
        store: PriceStore,
        settings: TrainerSettings | None = None,
        *,
        holder: str | None = None,
        wait_for_service: bool = True,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        metrics: TrainerMetrics | None = None,
    ) -> None:
        self._contest = contest
        self._metrics = metrics
        self._store = store
        self._settings = settings or TrainerSettings()
        self._wait_for_service = wait_for_service
        self._wall_clock = wall_clock
        """Real time now: a hold is re-anchored at the moment it is written, not when the round began."""
        self._next: Month | None = None
        self._reconcile_due = datetime.min.replace(tzinfo=UTC)
        """When the next reconcile is due: at once after a (re)start or a failed round, then every
        ``change_check_s`` (a change by hand another process left pending is rolled forward)."""
        self.holder = holder or this_process()
        self._lease_lost = threading.Event()
        self._lease_valid_until = datetime.min.replace(tzinfo=UTC)
        if metrics is not None:
            metrics.lease_held.set_function(lambda: float(self.holds_lease()))

    def holds_lease(self) -> bool:
        """Whether this trainer surely holds its lease now (renewed, not lost, not expired)."""
        return not self._lease_lost.is_set() and datetime.now(UTC) < self._lease_valid_until

    def fence(self, step: str = "") -> None:
        """Refuse to take a registry step unless this trainer surely still holds its lease.

        Pass it as the contest's step hook: a trainer that stalled (a paused VM, a frozen process)
        past its lease's expiry stops at the next step boundary instead of racing the trainer that
        took over, which finishes the change from the journal.
        """
        if self._lease_lost.is_set() or datetime.now(UTC) >= self._lease_valid_until:
            self._lease_lost.set()
            raise LeaseLostError(
                f"trainer {self.holder} no longer surely holds its lease (at {step or 'a step'})"
            )

    def step(self, real_now: datetime) -> list[MonthOutcome]:
        """Close every month that has ended in sim time and not been closed by this process yet."""
        if self._lease_lost.is_set():
            raise LeaseLostError(f"trainer {self.holder} lost its lease")
        self._lease_valid_until = max(self._lease_valid_until, self._held_until())
        if real_now >= self._reconcile_due:  # at once after a (re)start or a failed round
            self._reconcile(real_now)  # also with no clock, a finished clock or nothing left to close
        clock = self._store.read_clock()
        newest = self._store.latest_candle_time()
        if clock is None or newest is None:
            return []
        due = due_month(clock.sim_now(real_now), newest)
        if self._next is None:  # (re)started: resume after the journal
            first = self._store.earliest_candle_time()
            assert first is not None  # the store holds a candle: ``newest``
            self._next = self._contest.first_open_month(Month.of(first))
        else:
            self._contest.changes.sync_with_registry()  # an alias moved by hand is recorded at once
        if due < self._next:
            self._move_hold(clock)
            return []
        behind = (due.year - self._next.year) * 12 + due.month - self._next.month + 1
        if behind > 1:
            logger.info(
                "catching up: %d months have closed since the last round (%s to %s)", behind, self._next, due
            )
        outcomes = []
        last = _last_month_of_data(clock)
        while self._next <= due:
            if self._lease_lost.is_set():
                raise LeaseLostError(f"trainer {self.holder} lost its lease")
            # The replay's rule: no challenger after the last complete month (none could be scored).
            outcome = self._contest.close_month(
                self._next, train_challenger=last is None or self._next < last
            )
            _log(outcome)
            if self._next == last and not outcome.already_closed:
                logger.info("%s", end_of_data(last))
            outcomes.append(outcome)
            self._next = self._next.next()
        self._move_hold(clock)
        return outcomes

    def _reconcile(self, real_now: datetime) -> None:
        """Finish what a dead trainer left, and roll forward a change by hand left pending past the grace.

        Run on every (re)start and then every ``change_check_s``, whatever the clock does: a service
        killed half-way through ``POST /model/promote`` leaves a pending change that nobody else
        finishes, and ``registry check`` fails until it is (within ``change_grace_s + change_check_s``).
        """
        self._reconcile_due = real_now + timedelta(seconds=self._store.settings.change_check_s)
        for outcome in self._contest.reconcile():
            logger.warning(
                "finished the close of %s, left half-done by a stopped trainer or a failed round",
                outcome.month,
            )

    def _move_hold(self, clock: SimClock) -> None:
        """Let sim time run to the end of the next open month once the last closed one is served.

        The clock holds at a month's end until that month is closed here and, with
        ``wait_for_service``, until the inference service serves the champion the close decided; then
        the hold moves one month on. Restart-safe: it is derived from the journal and the store.
        """
        if clock.hold_at is None or self._next is None:
            return  # a clock that never holds (set by hand, or a replay's store)
        wanted = month_end(self._next.start.to_pydatetime())  # the end of the first open month
        if clock.hold_at >= wanted:
            return
        champion = self._contest.champion_version()
        served = self._store.served_versions(self._contest.model_name, self._wall_clock())
        if self._wait_for_service and champion is not None and set(served.values()) != {champion}:
            serving = ", ".join(sorted({_version(version) for version in served.values()})) or "nothing yet"
            reason = (
                f"waiting for every inference replica to serve v{champion} "
                f"({len(served)} live, serving {serving})"
            )
            if clock.hold_reason != reason:
                self._store.update_clock(
                    lambda current: current.with_hold(current.hold_at, reason, self._wall_clock())
                )
            return
        reason = f"waiting for the trainer to close {self._next}"
        self._store.update_clock(
            lambda current: current.with_hold(
                max(wanted, current.hold_at or wanted),
                reason,
                self._wall_clock(),  # re-anchored when written, not when the round began
            )
        )
        logger.info("sim time may run to %s (%s)", f"{wanted:%Y-%m-%d %H:%M}", reason)

    def run(self, stop: threading.Event, *, on_round: Callable[[], None] | None = None) -> None:
        """Hold the lease and step every interval until ``stop`` is set.

        A failed round (MLflow or the store down, a 5xx) is logged and retried with a doubling wait;
        the next round starts with a reconcile, so a change cut off half-way is finished first. Only
        a configuration error ends the trainer. ``on_round`` is a heartbeat after every round, also
        while waiting for the lease.
        """
        if not self._wait_for_lease(stop, on_round):
            return
        renewer = threading.Thread(target=self._renew, args=(stop,), name="trainer-lease", daemon=True)
        renewer.start()
        backoff = Backoff(
            self._settings.interval_s, max(self._settings.retry_max_s, self._settings.interval_s)
        )

        def round_() -> float | None:
            try:
                outcomes = self.step(datetime.now(UTC))
            except LeaseLostError:
                logger.error("lost the lease to another trainer: stopping without further changes")
                return None
            except Exception:  # retried by keep_trying, which says what it was
                self._next = None  # reconcile before going on
                self._reconcile_due = datetime.min.replace(tzinfo=UTC)
                if self._metrics is not None:
                    self._metrics.round_failures.inc()
                raise
            if self._metrics is not None:
                self._metrics.round_done(sum(not outcome.already_closed for outcome in outcomes))
            return self._settings.interval_s

        try:
            keep_trying(round_, stop, backoff, "trainer round", on_round=on_round, log=logger)
        finally:
            stop.set()
            renewer.join(timeout=5)
            if not self._lease_lost.is_set():
                try:
                    self._store.journal.release_lease(LEASE_NAME, self.holder)
                except Exception as error:  # the store is down: the lease expires on its own
                    logger.warning("could not release the lease (%s); it expires on its own", error)

    def _held_until(self) -> datetime:
        """When this trainer's lease ends, by the store (the past if another trainer holds it)."""
        lease = self._store.journal.lease(LEASE_NAME)
        if lease is None or lease.holder != self.holder:
            return datetime.min.replace(tzinfo=UTC)
        return lease.expires_at

    def _wait_for_lease(self, stop: threading.Event, on_round: Callable[[], None] | None) -> bool:
        said = None
        poll_s = min(self._settings.lease_ttl_s / 3, 5.0)

        def round_() -> float | None:
            nonlocal said
            lease = self._store.journal.acquire_lease(
                LEASE_NAME, self.holder, now=datetime.now(UTC), ttl_s=self._settings.lease_ttl_s
            )
            if lease.holder == self.holder:
                logger.info("trainer %s holds the lease until %s", self.holder, lease.expires_at)
                self._lease_valid_until = lease.expires_at
                return None
            if said != lease.holder:
                logger.warning(
                    "waiting: another trainer (%s) holds the lease since %s, until %s unless it renews",
                    lease.holder,
                    f"{lease.acquired_at:%Y-%m-%d %H:%M:%S}Z",
                    f"{lease.expires_at:%H:%M:%S}Z",
                )
                said = lease.holder
            return poll_s

        return keep_trying(
            round_,
            stop,
            Backoff(poll_s, poll_s),
            "taking the lease",
            warn=lambda error, _: logger.warning(
                "cannot reach the store for the lease (%s); retrying", error
            ),
            on_round=on_round,
            log=logger,
        )

    def _renew(self, stop: threading.Event) -> None:
        every_s = self._settings.lease_ttl_s / 3

        def round_() -> float | None:
            lease = self._store.journal.acquire_lease(
                LEASE_NAME, self.holder, now=datetime.now(UTC), ttl_s=self._settings.lease_ttl_s
            )
            if lease.holder != self.holder:
                logger.error("trainer %s took over the lease from this one (%s)", lease.holder, self.holder)
                self._lease_lost.set()
                return None
            self._lease_valid_until = lease.expires_at
            return every_s

        if not stop.wait(every_s):  # renewed a third of the lease after it was taken, and so on
            keep_trying(
                round_,
                stop,
                Backoff(every_s, every_s),
                "renewing the lease",
                warn=lambda error, _: logger.warning("could not renew the lease (%s); retrying", error),
                log=logger,
            )


def _version(version: int | None) -> str:
    return "nothing yet" if version is None else f"v{version}"


def _last_month_of_data(clock: SimClock) -> Month | None:
    """The last complete month of the data the clock plays (None: the clock has no end)."""
    if clock.end_at is None:
        return None
    return last_complete_month_by(clock.end_at)


def _log(outcome: MonthOutcome) -> None:
    if outcome.already_closed:
        logger.info("%s was closed before (restart): nothing to do", outcome.month)
        return
    if outcome.note and outcome.contest is None:
        logger.info("%s: %s", outcome.month, outcome.note)
    for trained in outcome.trained:
        logger.info(
            "%s: trained v%d (%s) through %s",
            outcome.month,
            trained.version,
            trained.role,
            trained.trained_through,
        )
    if outcome.contest is not None:
        verdict = outcome_of(outcome.contest.decision.promote)
        logger.info(
            "%s: v%d %s — %s",
            outcome.month,
            outcome.contest.challenger_version,
            verdict,
            outcome.contest.decision.reason,
        )
