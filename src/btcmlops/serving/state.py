"""``ServiceState``: the snapshot builder plus the two watchers that keep it current.

The champion watcher follows the ``champion`` alias (load, verify, swap; never serve a broken version);
the store watcher reports what this replica serves and appends new (and late) candles; the live scorer
scores the logged forecasts whose target hour has closed (``serving.live_scores``) after each of its
rounds. Each runs off the request path on its own thread, cadence and backoff, so a price store that
does not answer never holds up a swap, an MLflow that does not answer never holds up new candles, and
scoring never holds up either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

import pandas as pd
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from btcmlops.clock import HOUR, SimClock, SpeedGauge
from btcmlops.redaction import describe_error
from btcmlops.registry import CHALLENGER, CHAMPION, ModelRegistry
from btcmlops.retry import Backoff, keep_trying_async
from btcmlops.serving.drift import DriftCollector, LiveDrift
from btcmlops.serving.live_contest import LiveContest
from btcmlops.serving.live_scores import LiveScores, LiveScoresCollector, served_live_by
from btcmlops.serving.metrics import ServiceMetrics
from btcmlops.serving.snapshot import ServedModel, Snapshot, SnapshotBuilder, hour_number, hour_time
from btcmlops.serving.vetting import vet
from btcmlops.settings import ServeSettings
from btcmlops.store import PriceStore, this_process
from btcmlops.store.price_store import SERVED_REPORT_EVERY_S

if TYPE_CHECKING:
    from btcmlops.contest.changes import ChampionChanges

T = TypeVar("T")

logger = logging.getLogger(__name__)

_CLOCK_REFRESH_S = 0.01
_WRITE_OVERLAP = timedelta(seconds=10)
"""How far before the newest candle write seen the next look for late candles starts (writes still
committing, clocks of other machines a little off)."""


class ModelRejectedError(RuntimeError):
    """A new champion failed verification; the previous model keeps serving."""


class StoreUnavailableError(RuntimeError):
    """The price store did not answer (refused, lost or timed out): the request gets 503 with why."""


STORE_ERRORS = (DBAPIError, PoolTimeoutError, StoreUnavailableError)
"""What a price store that cannot be reached raises: a driver error (refused, lost connection, read
timeout), no free pooled connection in time, or no answer within the request's wait."""


class ServiceState:
    """Everything the routes read, and the background jobs that update it."""

    def __init__(
        self,
        settings: ServeSettings,
        store: PriceStore,
        registry: ModelRegistry,
        feature_set: str,
        *,
        changes: ChampionChanges | None = None,
    ) -> None:
        """``changes``: the journaled changes by hand; given, a third watcher rolls forward one that a
        process cut off left pending (None: nothing is repaired here)."""
        self.settings = settings
        self.store = store
        self.registry = registry
        self.changes = changes
        self.builder = SnapshotBuilder(feature_set)
        self.last_check: datetime | None = None
        self._last_check_monotonic: float | None = None
        self.last_swap_error: str | None = None
        """The champion watcher's current error (registry unreachable, a version refused); None once a
        check succeeds."""
        self.store_error: str | None = None
        """The store watcher's current error; None once the store answers again."""
        self.last_store_answer: datetime | None = None
        self._registry_thread: ThreadPoolExecutor | None = None
        self._store_thread: ThreadPoolExecutor | None = None
        self._repair_thread: ThreadPoolExecutor | None = None
        self._scorer_thread: ThreadPoolExecutor | None = None
        self._served_changed = asyncio.Event()
        self._candles_read = asyncio.Event()
        self._loading: int | None = None
        """The version the last champion check loaded (or kept): a backoff ends when the alias moves on."""
        self.metrics = ServiceMetrics(self.registry_check_age)
        self.challenger: ServedModel | None = None
        """The version in shadow (alias ``challenger``): scored live and judged in ``/contest/live``,
        never served. None when there is none, or ``shadow_challenger`` is off."""
        self.challenger_error: str | None = None
        """Why the challenger could not be loaded, or its shadow forecasts scored (None: no failure)."""
        self.live_contest: LiveContest | None = None
        """The shadow month in progress, judged by the contest's code (``create_app`` sets it when
        ``shadow_challenger`` is on)."""
        self.clock: SimClock | None = None
        """The shared sim clock (None: no live replay, every stored hour may be asked for)."""
        self._refresh_lock = asyncio.Lock()
        self._last_refresh = -math.inf
        self._news = asyncio.Event()
        """Set (and replaced) when the clock or the candles in memory change: wakes the long polls."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self.speed_gauge = SpeedGauge()
        """The clock's real speed, from every reading of the row this service makes (``GET /clock``)."""
        self._reported: int | None = None
        self._clock_read_at = -math.inf
        self._clock_writes = 0
        """How many times this service wrote the clock row: a read begun before a write is not kept."""
        self._reported_at = -math.inf
        self._written_since = datetime.now(UTC) - _WRITE_OVERLAP
        self._contest_runs: dict[str, str] = {}
        self.replica = this_process()
        """This process, as it reports what it serves (every replica follows the alias on its own)."""
        self._runs_searched_at = -math.inf
        self._train_ends: dict[int, datetime] = {}
        self._versions_searched_at = -math.inf
        self.live_scores = LiveScores()
        """Each live forecast scored once its target hour closed (``btcmlops_live_*`` in /metrics)."""
        self.metrics.registry.register(
            LiveScoresCollector(
                self.live_scores,
                sim_now=self.sim_now,
                data_now=self.data_now,
                interval_level=self.interval_level,
            )
        )
        self.drift = LiveDrift()
        """Features' drift from the champion's training window (/drift, ``btcmlops_feature_drift_psi``)."""
        self.metrics.registry.register(DriftCollector(self.drift))

    @property
    def snapshot(self) -> Snapshot:
        return self.builder.current

    def sim_now(self) -> datetime | None:
        """The sim clock's now, as this copy of the clock row reads it (None: no clock)."""
        clock = self.clock
        return None if clock is None else clock.sim_now(datetime.now(UTC))

    def data_now(self) -> datetime | None:
        """The close of the newest candle in memory (None: none yet)."""
        latest = self.snapshot.latest_hour
        return None if latest is None else hour_time(latest + 1)

    def window_end(self) -> datetime | None:
        """Where the live windows (7-day scores, drift) end: the sim clock's now, else (a replay's store
        served by hand) the newest candle's close; None before either."""
        return self.sim_now() or self.data_now()

    def interval_level(self) -> float | None:
        """The serving champion's interval level (None: no model, or one without an interval)."""
        model = self.snapshot.model
        return None if model is None else model.forecaster.interval_level

    def registry_check_age(self) -> float:
        if self._last_check_monotonic is None:
            return -1.0
        return time.monotonic() - self._last_check_monotonic

    # -- the champion ---------------------------------------------------------------------------------
    def check_registry(self) -> bool:
        """Load the champion if it changed; True if a new model now serves. Raises on failure."""
        info = self.registry.get_by_alias(CHAMPION)
        self.last_check = datetime.now(UTC)
        self._last_check_monotonic = time.monotonic()
        current = self.snapshot.model
        self._loading = None if current is None else current.info.version
        if info is None or (current is not None and current.info.version == info.version):
            return False
        self._loading = info.version
        forecaster = self.registry.load(info.version)  # refuses an unknown feature set
        if forecaster.feature_set != self.snapshot.feature_set:
            raise ModelRejectedError(
                f"version {info.version} uses feature set {forecaster.feature_set!r}; "
                f"this service builds {self.snapshot.feature_set!r}"
            )
        problem = vet(
            self.snapshot,
            info,
            forecaster,
            hours=self.settings.vet_hours,
            max_ratio=self.settings.vet_max_mae_ratio,
        )
        if problem is not None:  # the last good champion keeps serving
            self.metrics.rejections.inc()
            raise ModelRejectedError(problem)
        self.last_swap_error = (
            None  # cleared before the swap: no one sees the new version beside an old error
        )
        served = ServedModel(info=info, forecaster=forecaster)
        self.builder.use_model(served)
        self._remember_window(served)  # its hours may be scored after it stops serving
        self.metrics.swaps.inc()
        self.metrics.served_version.set(info.version)
        logger.info("now serving %s version %d", self.registry.model_name, info.version)
        return True

    def contest_runs(self, months: set[str]) -> tuple[str | None, dict[str, str]]:
        """The experiment id and each month's contest run id, asked of MLflow only for months not known
        (at most every ``SERVED_REPORT_EVERY_S``).

        Links for the dashboard: an MLflow that cannot be reached leaves them out, nothing fails.
        """
        if (
            months - self._contest_runs.keys()
            and time.monotonic() - self._runs_searched_at > SERVED_REPORT_EVERY_S
        ):
            self._runs_searched_at = time.monotonic()
            try:
                found = self.registry.contest_runs()
            except Exception as error:
                logger.warning("contest runs not found in MLflow: %s", error)
            else:
                self._contest_runs.update(
                    {run.month: run.run_id for run in found if run.status == "FINISHED"}
                )
        return self.registry.experiment_id, dict(self._contest_runs)

    def known_training_ends(self) -> dict[int, datetime]:
        """Every version's last training target hour known now, from memory (MLflow is not asked): what
        a read worker builds a page's ``live`` with (``training_ends`` asks for the others).

        Each version is noted as it is loaded (champion and challenger alike), and kept: a champion
        replaced before the live scorer read its forecasts from the log must not wait on MLflow (down, or
        asked less than ``SERVED_REPORT_EVERY_S`` ago) for a window this process had in memory.
        """
        return dict(self._train_ends)

    def _remember_window(self, served: ServedModel) -> None:
        """Keep ``served``'s last training target hour for as long as this process runs."""
        self._train_ends[served.info.version] = served.info.window.train_end.to_pydatetime()

    def training_ends(self, versions: set[int]) -> dict[int, datetime]:
        """Each version's last training target hour, asked of MLflow only for versions not known (at most
        every ``SERVED_REPORT_EVERY_S``; a version's window never changes).

        What tells a live forecast from an in-sample one (``counts_as_live``): a version
        MLflow cannot tell about now is left out, and its forecasts are not counted live meanwhile.
        """
        if (
            versions - self._train_ends.keys()
            and time.monotonic() - self._versions_searched_at > SERVED_REPORT_EVERY_S
        ):
            self._versions_searched_at = time.monotonic()
            try:
                found = self.registry.versions()
            except Exception as error:
                logger.warning("training windows not found in MLflow: %s", error)
            else:
                self._train_ends.update(
                    {info.version: info.window.train_end.to_pydatetime() for info in found}
                )
        return {version: self._train_ends[version] for version in versions if version in self._train_ends}

    async def served_live_by(self, target: datetime) -> int | None:
        """The version that forecast the hour ``target`` live, if any (``live_scores.served_live_by``).

        From memory (the log as the live scorer read it, and this process's forecasts since): only
        before the scorer's first reading of the log is the store asked (a store the store watcher finds
        down is not: the answer stays unsaid), and MLflow only for a version whose window is not known.
        """
        if self.live_scores.log_read:
            rows = self.live_scores.made_in_time(hour_number(target))
        elif self.store_error is None:
            try:
                logged = await self.store_call(lambda: self.store.read_predictions(start=target, end=target))
            except StoreUnavailableError:
                return None
            rows = [row for row in logged if row.live]
        else:
            return None
        if not rows:
            return None
        versions = {row.model_version for row in rows}
        ends = self.known_training_ends()
        if versions - ends.keys():  # a version served before this process began: asked once in a while
            ends = await asyncio.to_thread(self.training_ends, versions)
        return served_live_by(rows, ends)

    def report_served(self) -> None:
        """Write which version this replica serves into the store: the trainer moves the clock's hold on it.

        Written when it changes, and again at least every ``SERVED_REPORT_EVERY_S`` (a restarted trainer or
        a store that was down gets it back soon).
        """
        model = self.snapshot.model
        version = None if model is None else model.info.version
        now = time.monotonic()
        if version == self._reported and now - self._reported_at < SERVED_REPORT_EVERY_S:
            return
        self.store.write_served_version(
            self.registry.model_name, version, datetime.now(UTC), replica=self.replica
        )
        self._reported, self._reported_at = version, now

    def forget_served(self) -> None:
        """On a clean stop: this replica serves nothing any more, the trainer need not wait for it."""
        self.store.forget_served(self.registry.model_name, self.replica)

    def check_challenger(self) -> None:
        """Follow the ``challenger`` alias (None when no challenger is in shadow, or the shadow is off)."""
        if not self.settings.shadow_challenger:
            return
        info = self.registry.get_by_alias(CHALLENGER)
        if info is None:
            self.challenger = None
        elif self.challenger is None or self.challenger.info.version != info.version:
            self.challenger = ServedModel(info=info, forecaster=self.registry.load(info.version))
            self._remember_window(self.challenger)

    async def watch_registry(self) -> None:
        """Run the champion watcher, the store watcher and the change repairer side by side until
        cancelled.

        Each has a thread of its own: a call hanging on one dependency cannot queue the other's work
        (the repairer needs both, so it waits on neither watcher's thread).
        """
        self._loop = asyncio.get_running_loop()
        self._registry_thread = ThreadPoolExecutor(1, thread_name_prefix="champion-watcher")
        self._store_thread = ThreadPoolExecutor(1, thread_name_prefix="store-watcher")
        self._repair_thread = ThreadPoolExecutor(1, thread_name_prefix="change-repairer")
        self._scorer_thread = ThreadPoolExecutor(1, thread_name_prefix="live-scorer")
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.watch_champion(), name="champion-watcher")
                group.create_task(self.watch_store(), name="store-watcher")
                group.create_task(self.watch_live_scores(), name="live-scorer")
                if self.changes is not None:
                    group.create_task(self.watch_changes(), name="change-repairer")
        finally:  # a thread still waiting on a dependency ends at its timeout; nobody waits for it
            for thread in (
                self._registry_thread,
                self._store_thread,
                self._repair_thread,
                self._scorer_thread,
            ):
                thread.shutdown(wait=False, cancel_futures=True)

    async def watch_champion(self) -> None:
        """Check the alias every poll interval (and the challenger's); on failure keep serving, back off."""
        await self._keep_checking(
            "registry check",
            self._champion_round,
            self._registry_probe,
            self._champion_failed,
            self._champion_ok,
            pause=lambda: asyncio.sleep(self.settings.poll_interval_s),
        )

    async def watch_store(self) -> None:
        """Report the served version, read new and late candles every poll interval; back off on failure."""
        await self._keep_checking(
            "price store round",
            self._store_round,
            self._store_probe,
            self._store_failed,
            self._store_ok,
            pause=self._until_served_changes,
        )

    async def watch_live_scores(self) -> None:
        """Score the newly logged forecasts whose target hour closed, after each read of new candles
        (at least every poll interval: forecasts are logged apart from candles); a failure is logged
        and the next round tries again (the first round reads the whole log: a restart resumes).
        Each round first reads the features' drift (``serving.drift``), from memory only.
        """

        async def score() -> None:
            await self._in(  # first: a store that fails cannot hold it up
                self._scorer_thread,
                lambda: self.drift.update(self.snapshot, self.window_end()),
            )
            await self._in(
                self._scorer_thread,
                lambda: self.live_scores.update(self.store, self.snapshot, self.training_ends),
            )
            await self._in(self._scorer_thread, self.score_shadow)

        async def until_candles() -> None:
            self._candles_read.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.poll_interval_s):
                    await self._candles_read.wait()

        interval, cap = self.settings.poll_interval_s, self.settings.max_backoff_s
        await keep_trying_async(
            score,
            Backoff(min(interval, cap), cap),
            "live scores",
            warn=lambda error, wait: logger.warning(
                "live scores failed (retry in %.1f s): %s", wait, describe_error(error)
            ),
            pause=until_candles,
            log=logger,
        )

    def score_shadow(self) -> None:
        """Score the challenger's closed shadow hours and judge the month in progress; a failure is
        counted (``btcmlops_shadow_failures_total``) and shown, and touches nothing served."""
        if not self.settings.shadow_challenger:
            return
        snapshot, challenger = self.snapshot, self.challenger
        try:
            self.live_scores.score_shadow(snapshot, challenger)
            if self.live_contest is not None:
                self.live_contest.update(snapshot.latest_hour)
        except Exception as error:
            self._shadow_failed(error, "shadow scoring")
            if self.live_contest is not None:
                self.live_contest.error = self.challenger_error
        else:
            if self.challenger_error is not None and self.challenger_error.startswith("shadow scoring"):
                self.challenger_error = None

    def _shadow_failed(self, error: Exception, what: str) -> None:
        self.challenger_error = f"{what}: {describe_error(error)}"[:500]
        self.metrics.shadow_failures.inc()
        logger.warning("%s", self.challenger_error)

    async def watch_changes(self) -> None:
        """Every ``change_check_s``, roll forward a change by hand pending past ``change_grace_s``.

        The service is the one process of the stack that is always up, also without a trainer (``btcmlops
        serve`` alone) and after the clock has finished: a promote cut off half-way (this replica or
        another killed inside ``POST /model/promote``, a CLI interrupted) is finished here, so ``registry
        check`` is sound again without anyone typing ``reconcile``. A failure is logged and retried.
        """
        changes = self.changes
        assert changes is not None
        grace_s, every_s = self.store.settings.change_grace_s, self.store.settings.change_check_s

        async def repair() -> None:
            await self._in(self._repair_thread, lambda: changes.repair_stale(grace_s))

        def failed(error: Exception, _: float) -> None:  # MLflow or the store away: the next look tries
            logger.warning("change repair failed (retry in %g s): %s", every_s, describe_error(error))

        await keep_trying_async(
            repair,
            Backoff(every_s, every_s),
            "change repair",
            warn=failed,
            pause=lambda: asyncio.sleep(every_s),
            log=logger,
        )

    async def _until_served_changes(self) -> None:
        """A poll interval, cut short by a swap: the new version is reported at once, not a poll later.

        ``asyncio.timeout``, never ``asyncio.wait_for``, here and in every loop of this module: on Python
        3.11 ``wait_for`` drops a cancellation that arrives as the awaited work completes, and a watcher
        that missed its cancellation polls forever (seen as a test that hung at shutdown, 2 runs in 12).
        """
        self._served_changed.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.settings.poll_interval_s):
                await self._served_changed.wait()

    async def _keep_checking(
        self,
        what: str,
        round_: Callable[[], Awaitable[None]],
        probe: Callable[[], Awaitable[bool]],
        failed: Callable[[BaseException], str],
        succeeded: Callable[[], None],
        *,
        pause: Callable[[], Awaitable[None]],
    ) -> None:
        """``round_`` every poll interval; after a failure wait (doubling to ``max_backoff_s``) until the
        dependency answers again (``probe``), then go back to the poll interval at once."""
        interval = self.settings.poll_interval_s
        cap = self.settings.max_backoff_s
        await keep_trying_async(
            round_,
            Backoff(min(interval, cap), cap),  # interval * 2 ** (failures - 1), at most the cap
            what,
            warn=lambda error, wait: logger.warning(
                "%s failed (retry in %.1f s): %s", what, wait, failed(error)
            ),
            pause=pause,
            probe=probe,
            on_success=succeeded,
            log=logger,
        )

    async def _in(self, thread: ThreadPoolExecutor | None, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(thread, work)

    # the champion watcher: MLflow only, on its own thread
    async def _champion_round(self) -> None:
        if await self._in(self._registry_thread, self.check_registry):
            self._served_changed.set()
        try:  # a broken challenger is only missing from the shadow; the champion is unaffected
            await self._in(self._registry_thread, self.check_challenger)
        except Exception as error:
            self._shadow_failed(error, "challenger load")
        else:
            if self.challenger_error is not None and self.challenger_error.startswith("challenger load"):
                self.challenger_error = None

    async def _registry_probe(self) -> bool:
        """Whether the alias now names another version than the one the failed check was loading."""
        info = await self._in(self._registry_thread, lambda: self.registry.get_by_alias(CHAMPION))
        return (None if info is None else info.version) != self._loading

    def _champion_failed(self, error: BaseException) -> str:
        self.last_swap_error = describe_error(error)[:500]
        self.metrics.swap_failures.inc()
        return self.last_swap_error

    def _champion_ok(self) -> None:
        self.last_swap_error = None

    # the store watcher: the price store only, on its own thread
    async def _store_round(self) -> None:
        """One pass; past ``store_timeout_s`` the store is shown silent while the pass goes on (the
        driver's timeouts end it), and the pass's own result settles it."""
        work = asyncio.ensure_future(self._store_pass())
        try:
            done, _ = await asyncio.wait({work}, timeout=self.settings.store_timeout_s)
            if not done:
                self.store_error = (
                    f"TimeoutError: the price store has not answered for {self.settings.store_timeout_s:g} s"
                )
            await work
        finally:
            work.cancel()  # only when this watcher is cancelled itself

    async def _store_pass(self) -> None:
        await self._in(self._store_thread, self.report_served)
        async with self._refresh_lock:
            self._last_refresh = time.monotonic()
            await self._in(self._store_thread, self._read_new_candles)
            await self._in(self._store_thread, self.take_late_candles)
        self._candles_read.set()  # the live scorer's cue
        self.announce()  # the fallback of a notice lost: a long poll waits at most a poll interval

    async def _store_probe(self) -> bool:
        await self._in(self._store_thread, self.store.ping)
        return False

    def _store_failed(self, error: BaseException) -> str:
        self.store_error = describe_error(error)
        self.metrics.store_failures.inc()
        return self.store_error

    def _store_ok(self) -> None:
        self.store_error = None
        self.last_store_answer = datetime.now(UTC)

    async def store_call(self, work: Callable[[], T]) -> T:
        """Run a request's store work on a worker thread, waiting at most ``store_timeout_s``.

        Raises:
            StoreUnavailableError: The store refused, lost the connection or did not answer in time.
        """
        return await self.within_store_timeout(asyncio.to_thread(work))

    async def within_store_timeout(self, work: Awaitable[T]) -> T:
        """Await ``work`` (which reads or writes the store) at most ``store_timeout_s``.

        A thread left waiting on a silent store ends at the driver's read timeout; the request does not
        wait for it.

        Raises:
            StoreUnavailableError: The store refused, lost the connection or did not answer in time.
        """
        try:
            async with asyncio.timeout(self.settings.store_timeout_s):
                return await work
        except TimeoutError:
            raise StoreUnavailableError(f"no answer within {self.settings.store_timeout_s:g} s") from None
        except (DBAPIError, PoolTimeoutError) as error:
            raise StoreUnavailableError(describe_error(error)) from error

    # -- candles --------------------------------------------------------------------------------------
    def _read_new_candles(self) -> None:
        self._read_clock()
        latest = self.snapshot.latest_hour
        start = None if latest is None else pd.Timestamp((latest + 1) * 3_600_000_000_000, tz=UTC)
        self.builder.add_candles(self.store.read_candles(start=start))

    def take_late_candles(self) -> bool:
        """Build the snapshot again if a candle came late or was corrected; True if it was.

        New hours arrive by ``refresh_candles``; this looks at everything written since the last look,
        so a gap filled later or a candle corrected in the store is served, not only after a restart.
        """
        written, newest = self.store.read_candles_written(self._written_since)
        if newest is not None:
            self._written_since = max(self._written_since, newest - _WRITE_OVERLAP)
        if not self.snapshot.differs(written):
            return False
        self.builder.rebuild(self.store.read_candles())
        self.metrics.rebuilds.inc()
        logger.info("a late or corrected candle in the store: the snapshot was built again")
        return True

    async def refresh_clock(self) -> None:
        """Read the clock row again, at most every ``_CLOCK_REFRESH_S`` (one tiny query).

        Asked when a request is too early by this copy of the clock: the hold may just have moved, and
        at 48 sim hours a second a poll interval of staleness is a day of sim time.
        """
        now = time.monotonic()
        if now - self._clock_read_at < _CLOCK_REFRESH_S:
            return
        self._clock_read_at = now
        await asyncio.to_thread(self._read_clock)
        self.announce()

    async def forecast_made(self, hour: datetime) -> None:
        """Tell a paced clock that the forecast from ``hour`` is made, so it may run on.

        Decided on the clock row itself (under its lock), not on this copy, which may be older: a
        missed move would hold the clock for good. A store that cannot be reached only holds the clock.
        """
        clock = self.clock
        if clock is None or not clock.paced or (clock.forecast_due is not None and hour < clock.forecast_due):
            return
        try:  # bounded: a silent store must not hold the answer, which is made already
            moved = await self.store_call(
                lambda: self.store.update_clock(
                    lambda current: current.with_forecast_made(hour, datetime.now(UTC))
                )
            )
        except Exception as error:
            logger.warning("could not move the paced clock past %s: %s", hour, error)
            return
        if moved is not None:
            self.clock_written(moved)

    async def refresh_candles(self, *, force: bool = False) -> None:
        """Append candles newer than the window; at most once per ``refresh_min_interval_s``."""
        async with self._refresh_lock:
            now = time.monotonic()
            if not force and now - self._last_refresh < self.settings.refresh_min_interval_s:
                return
            self._last_refresh = now
            await asyncio.to_thread(self._read_new_candles)
        self.announce()

    async def hour_closed(self, hour: datetime) -> None:
        """The feed wrote the candle of ``hour``: read the clock and the new candles now, not a poll
        later, and wake the long polls (``GET /clock?after=``) waiting for it.

        Nothing is read when that candle is in memory already (a notice that came late or twice).
        """
        if self.snapshot.index_of(int(hour.timestamp()) // 3600) is not None:
            return
        await self.refresh_candles(force=True)

    def _read_clock(self) -> None:
        """Read the clock row into this copy, unless this service wrote the row meanwhile: a read begun
        before that write would put back an older row (a forecast made undone in memory)."""
        writes = self._clock_writes
        clock = self.store.read_clock()
        if writes == self._clock_writes:
            self.clock = clock

    def clock_written(self, clock: SimClock) -> None:
        """This service wrote the clock row (a forecast made, a change over HTTP): keep it as the copy."""
        self._clock_writes += 1
        self.clock = clock
        self.observe_clock(clock)
        self.announce()

    def announce(self) -> None:
        """Wake every long poll: the clock or the candles in memory changed (safe from any thread)."""
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        news, self._news = self._news, asyncio.Event()
        news.set()

    def observe_clock(self, clock: SimClock) -> None:
        """Note what ``clock`` reads now, for its real speed (``speed_gauge``)."""
        self.speed_gauge.observe(time.monotonic(), clock.sim_now(datetime.now(UTC)))

    def answerable(self, hour: datetime) -> bool:
        """Whether the forecast from ``hour`` is answered from memory now: its candle is in the window and,
        by this copy of the clock, it may be asked (closed, and not held for its month's contest)."""
        if self.snapshot.index_of(int(hour.timestamp()) // 3600) is None:
            return False
        clock = self.clock
        return clock is None or hour <= clock.last_forecastable_hour(datetime.now(UTC))

    async def until_answerable(self, hour: datetime, wait_s: float) -> bool:
        """Wait at most ``wait_s`` until the forecast from ``hour`` may be asked and answered from
        memory: True once it may; False at the end of the wait, or at once when a paced clock waits for
        an earlier hour (the asker thought it done, or this copy is behind the row: the asker must read
        the row itself before it goes back, never this copy).

        Woken by news (``announce``: the feed's notice of a candle, a forecast made, a read of the store),
        or when the hour closes by this copy of the clock if its candle is already in memory. No news
        (a notice lost) costs at most a poll interval: the store watcher reads the store every one.
        """
        self._loop = asyncio.get_running_loop()
        deadline = time.monotonic() + wait_s
        while True:
            news = self._news
            clock = self.clock
            if (
                clock is not None
                and clock.paced
                and clock.forecast_due is not None
                and clock.forecast_due < hour
            ):
                return False  # the clock waits for an earlier hour: the asker hears it now, from the store
            if self.answerable(hour):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            now = datetime.now(UTC)
            if (  # in memory, not closed yet (a clock set back): wake when it closes
                clock is not None
                and self.snapshot.index_of(int(hour.timestamp()) // 3600) is not None
                and clock.sim_now(now) < hour + HOUR
            ):
                closes_at = clock.real_time_at(hour + HOUR)
                if closes_at is not None:
                    left = min(left, max((closes_at - now).total_seconds(), 0.0) + 0.0005)
            await _news_within(news, left)


async def _news_within(news: asyncio.Event, wait_s: float) -> None:
    """Wait for ``news`` at most ``wait_s``; the end of the wait is an answer too, not an error."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(wait_s):
            await news.wait()
