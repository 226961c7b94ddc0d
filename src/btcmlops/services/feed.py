"""``MarketFeed``: writes each candle into the price store only once its hour has closed in sim time.

The store then holds only the past, so no service can read the future even by mistake. Writes are
upserts after the newest stored hour, so a restarted feed resumes without duplicates. The feed wakes when
the next hour closes by the clock row (looking again every interval, since the row may change), and
tells the inference service of each candle written (``HourAnnouncer``), so the hour is pushed down the
chain (feed, service, client), not found by polls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import numpy.typing as npt
import pandas as pd

from btcmlops.candles import open_time_ns
from btcmlops.clock import HOUR, SimClock, last_closed_hour
from btcmlops.retry import Backoff, keep_trying
from btcmlops.store import PriceStore

logger = logging.getLogger(__name__)

_WAKE_LATE = timedelta(milliseconds=0.5)
"""How long after an hour's computed close the feed wakes: the clock reads in whole microseconds."""
_FED_ALL_WAIT_S = 1.0
"""How long the feed sleeps once it has written every candle of its file: nothing can be due again, so
it only keeps its heartbeat and its stop (the stack stays up after the replay is over, and the feed
read the clock row a hundred times a second meanwhile)."""


def candles_due(
    candles: pd.DataFrame,
    after: pd.Timestamp | None,
    closed: datetime,
    times: npt.NDArray[np.int64] | None = None,
) -> pd.DataFrame:
    """The candles newer than ``after`` whose hour has closed (open time <= ``closed``).

    ``candles`` are in canonical form (sorted by open time): two binary searches, not a mask over the
    whole file, since the feed asks every few milliseconds; ``times`` (``open_time_ns`` of their open
    times, made once by such a caller) spares the pandas searches, most of the feed's cost while a paced
    clock waits.
    """
    if times is None:
        times = open_time_ns(candles["open_time"])
    first = 0 if after is None else int(np.searchsorted(times, pd.Timestamp(after).value, side="right"))
    return candles.iloc[first : int(np.searchsorted(times, pd.Timestamp(closed).value, side="right"))]


class MarketFeed:
    """Plays a candle file into the store at the speed of the sim clock."""

    def __init__(
        self,
        store: PriceStore,
        candles: pd.DataFrame,
        *,
        interval_s: float = 0.01,
        retry_first_s: float = 0.5,
        retry_max_s: float = 30.0,
        on_written: Callable[[datetime], None] | None = None,
    ) -> None:
        """``on_written``: told the newest hour after each write (an ``HourAnnouncer``)."""
        self._store = store
        self._on_written = on_written
        self.next_wait_s = interval_s
        """How long the feed sleeps after its last step: until the next hour closes, at most the interval."""
        self._candles = candles
        self._times = open_time_ns(candles["open_time"])
        self._interval_s = interval_s
        self._backoff = Backoff(retry_first_s, retry_max_s)
        self._latest: pd.Timestamp | None = None
        self._clock_missing = False
        """Whether the last step found no clock row (nothing is fed until ``btcmlops clock reset``)."""

    def step(self, real_now: datetime) -> int:
        """Write what has closed since the last step; return how many candles were written."""
        self.next_wait_s = self._interval_s
        if self._fed_all():
            self.next_wait_s = max(self._interval_s, _FED_ALL_WAIT_S)
            return 0
        clock = self._store.read_clock()
        self._clock_missing = clock is None
        if clock is None:
            return 0
        if self._latest is None:  # resume after the newest stored candle
            latest = self._store.latest_candle_time()
            self._latest = pd.Timestamp(latest) if latest is not None else None
        due = candles_due(self._candles, self._latest, last_closed_hour(clock.sim_now(real_now)), self._times)
        if not due.empty:
            self._store.upsert_candles(due)
            self._latest = due["open_time"].iloc[-1]
            if self._on_written is not None:
                self._on_written(self._latest.to_pydatetime())
        self.next_wait_s = self._until_next_close(clock, real_now)
        return len(due)

    def _fed_all(self) -> bool:
        """Whether the newest candle written is the file's last: the feed resumes after the newest
        stored candle and never goes back, so no clock can make another one due."""
        return self._latest is not None and len(self._times) > 0 and self._latest.value >= self._times[-1]

    def _until_next_close(self, clock: SimClock, real_now: datetime) -> float:
        """Seconds until the next candle's hour closes by ``clock``, at most the interval (the row may
        change: a forecast made or a hold moved lets it run on, and nobody tells the feed)."""
        if self._latest is None:
            return self._interval_s
        closes_at = clock.real_time_at(self._latest.to_pydatetime() + 2 * HOUR)
        if closes_at is None:
            return self._interval_s
        return min(self._interval_s, max(0.0, (closes_at + _WAKE_LATE - real_now).total_seconds()))

    def run(
        self, stop: threading.Event, *, log_every_s: float = 5.0, on_round: Callable[[], None] | None = None
    ) -> None:
        """Step every interval until ``stop`` is set, logging progress at most every ``log_every_s``.

        A failed step (the store down, locked or unreadable) is logged and retried after a doubling
        wait; only a configuration error ends the feed. ``on_round`` is called after every step, failed
        or not (a heartbeat for a container healthcheck: the feed lives, and restarting it would not
        bring the store back).
        """
        waiting_logged = False
        unlogged, last_log = 0, time.monotonic()

        def round_() -> float:
            nonlocal waiting_logged, unlogged, last_log
            unlogged += self.step(datetime.now(UTC))
            if unlogged and time.monotonic() - last_log >= log_every_s:
                logger.info("fed %d candle(s) up to %s", unlogged, self._latest)
                unlogged, last_log = 0, time.monotonic()
            elif not waiting_logged and self._clock_missing:
                logger.info("no sim clock yet: waiting (reset it with `btcmlops clock reset`)")
                waiting_logged = True
            return self.next_wait_s

        keep_trying(round_, stop, self._backoff, "feed step", on_round=on_round, log=logger)


class HourAnnouncer:
    """Tells the inference service of the newest candle written (``POST /clock/hour-closed``), on a
    thread of its own so the feed never waits on the service.

    Notices that come while one is on its way are sent as one (the newest hour: the service reads every
    candle after its newest). A lost notice costs the service at most a poll interval, since it still
    reads the store on its own; a failure is logged once per outage.
    """

    def __init__(self, http: httpx.Client, control_key: str | None) -> None:
        self._http = http
        self._headers = {"X-API-Key": control_key} if control_key else {}
        self._hour: datetime | None = None
        self._closed = False
        self._failing = False
        self._ready = threading.Condition()
        self.sent = 0
        self._thread = threading.Thread(target=self._run, name="hour-announcer", daemon=True)
        self._thread.start()

    def __call__(self, hour: datetime) -> None:
        with self._ready:
            self._hour = hour
            self._ready.notify()

    def close(self) -> None:
        """Stop after the notice on its way, if any."""
        with self._ready:
            self._closed = True
            self._ready.notify()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._ready:
                while self._hour is None and not self._closed:
                    self._ready.wait()
                if self._closed:
                    return
                hour, self._hour = self._hour, None
            assert hour is not None
            self._tell(hour)

    def _tell(self, hour: datetime) -> None:
        try:
            answer = self._http.post(
                "/clock/hour-closed", json={"hour": hour.isoformat()}, headers=self._headers
            )
            answer.raise_for_status()
        except httpx.HTTPError as error:
            if not self._failing:
                logger.warning(
                    "could not tell the inference service of the candle at %s (%s): it reads the store "
                    "every poll interval meanwhile",
                    hour,
                    error,
                )
            self._failing = True
        else:
            self.sent += 1
            if self._failing:
                logger.info("the inference service hears of each candle again")
            self._failing = False
