"""``ServiceState``: the snapshot builder plus the two jobs that keep it current.

``check_registry`` follows the ``champion`` alias (load, verify, swap; never serve a broken version)
and ``refresh_candles`` appends new candles from the store. Both run off the request path.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import time
from datetime import UTC, datetime, timedelta

import pandas as pd

from btcmlops.clock import SimClock
from btcmlops.registry import CHALLENGER, CHAMPION, ModelRegistry
from btcmlops.serving.metrics import ServiceMetrics
from btcmlops.serving.snapshot import ServedModel, Snapshot, SnapshotBuilder
from btcmlops.serving.vetting import vet
from btcmlops.settings import ServeSettings
from btcmlops.store import PriceStore
from btcmlops.store.price_store import SERVED_REPORT_EVERY_S

logger = logging.getLogger(__name__)

_CLOCK_REFRESH_S = 0.01
_WRITE_OVERLAP = timedelta(seconds=10)
"""How far before the newest candle write seen the next look for late candles starts (writes still
committing, clocks of other machines a little off)."""


class ModelRejectedError(RuntimeError):
    """A new champion failed verification; the previous model keeps serving."""


class ServiceState:
    """Everything the routes read, and the background jobs that update it."""

    def __init__(
        self, settings: ServeSettings, store: PriceStore, registry: ModelRegistry, feature_set: str
    ) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self.builder = SnapshotBuilder(feature_set)
        self.last_check: datetime | None = None
        self._last_check_monotonic: float | None = None
        self.last_swap_error: str | None = None
        self.metrics = ServiceMetrics(self.registry_check_age)
        self.challenger: ServedModel | None = None
        """The version in shadow (alias ``challenger``), for ``/shadow`` only: it never serves."""
        self.clock: SimClock | None = None
        """The shared sim clock (None: no live replay, every stored hour may be asked for)."""
        self._refresh_lock = asyncio.Lock()
        self._last_refresh = -math.inf
        self._reported: int | None = None
        self._clock_read_at = -math.inf
        self._reported_at = -math.inf
        self._written_since = datetime.now(UTC) - _WRITE_OVERLAP
        self._contest_runs: dict[str, str] = {}
        self.replica = f"{socket.gethostname()}:{os.getpid()}"
        """This process, as it reports what it serves (every replica follows the alias on its own)."""
        self._runs_searched_at = -math.inf

    @property
    def snapshot(self) -> Snapshot:
        return self.builder.current

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
        if info is None or (current is not None and current.info.version == info.version):
            return False
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
        self.builder.use_model(ServedModel(info=info, forecaster=forecaster))
        self.last_swap_error = None
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
        """Follow the ``challenger`` alias (None when no challenger is in shadow)."""
        info = self.registry.get_by_alias(CHALLENGER)
        if info is None:
            self.challenger = None
        elif self.challenger is None or self.challenger.info.version != info.version:
            self.challenger = ServedModel(info=info, forecaster=self.registry.load(info.version))

    async def watch_registry(self) -> None:
        """Check the alias every poll interval; on failure back off (doubling) and keep serving."""
        delay = self.settings.poll_interval_s
        while True:
            try:
                await asyncio.to_thread(self.check_registry)
                delay = self.settings.poll_interval_s
            except Exception as error:
                self.last_swap_error = f"{error.__class__.__name__}: {error}"[:500]
                self.metrics.swap_failures.inc()
                logger.warning("registry check failed (retry in %.1f s): %s", delay, self.last_swap_error)
                delay = min(delay * 2, self.settings.max_backoff_s)
            try:
                await asyncio.to_thread(self.report_served)
            except Exception as error:
                logger.warning("could not report the served version: %s", error)
            try:  # a broken challenger is only missing from /shadow; the champion is unaffected
                await asyncio.to_thread(self.check_challenger)
            except Exception as error:
                logger.warning("challenger check failed: %s", error)
            try:
                await self.refresh_candles(force=True)
                async with self._refresh_lock:
                    await asyncio.to_thread(self.take_late_candles)
            except Exception as error:
                logger.warning("candle refresh failed: %s", error)
            await asyncio.sleep(delay)

    # -- candles --------------------------------------------------------------------------------------
    def _read_new_candles(self) -> None:
        self.clock = self.store.read_clock()
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
        self.clock = await asyncio.to_thread(self.store.read_clock)

    async def forecast_made(self, hour: datetime) -> None:
        """Tell a paced clock that the forecast from ``hour`` is made, so it may run on.

        Decided on the clock row itself (under its lock), not on this copy, which may be older: a
        missed move would hold the clock for good. A store that cannot be reached only holds the clock.
        """
        clock = self.clock
        if clock is None or not clock.paced or (clock.forecast_due is not None and hour < clock.forecast_due):
            return
        try:
            moved = await asyncio.to_thread(
                self.store.update_clock, lambda current: current.with_forecast_made(hour, datetime.now(UTC))
            )
        except Exception as error:
            logger.warning("could not move the paced clock past %s: %s", hour, error)
            return
        if moved is not None:
            self.clock = moved

    async def refresh_candles(self, *, force: bool = False) -> None:
        """Append candles newer than the window; at most once per ``refresh_min_interval_s``."""
        async with self._refresh_lock:
            now = time.monotonic()
            if not force and now - self._last_refresh < self.settings.refresh_min_interval_s:
                return
            self._last_refresh = now
            await asyncio.to_thread(self._read_new_candles)
