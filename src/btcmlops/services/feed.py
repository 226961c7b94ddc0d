"""``MarketFeed``: writes each candle into the price store only once its hour has closed in sim time.

The store then holds only the past, so no service can read the future even by mistake. Writes are
upserts after the newest stored hour, so a restarted feed resumes without duplicates.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pandas as pd

from btcmlops.clock import last_closed_hour
from btcmlops.retry import Backoff, keep_trying
from btcmlops.store import PriceStore

logger = logging.getLogger(__name__)


def candles_due(candles: pd.DataFrame, after: pd.Timestamp | None, closed: datetime) -> pd.DataFrame:
    """The candles newer than ``after`` whose hour has closed (open time <= ``closed``)."""
    times = candles["open_time"]
    keep = times <= pd.Timestamp(closed)
    if after is not None:
        keep &= times > after
    return candles.loc[keep]


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
    ) -> None:
        self._store = store
        self._candles = candles
        self._interval_s = interval_s
        self._backoff = Backoff(retry_first_s, retry_max_s)
        self._latest: pd.Timestamp | None = None

    def step(self, real_now: datetime) -> int:
        """Write what has closed since the last step; return how many candles were written."""
        clock = self._store.read_clock()
        if clock is None:
            return 0
        if self._latest is None:  # resume after the newest stored candle
            latest = self._store.latest_candle_time()
            self._latest = pd.Timestamp(latest) if latest is not None else None
        due = candles_due(self._candles, self._latest, last_closed_hour(clock.sim_now(real_now)))
        if due.empty:
            return 0
        self._store.upsert_candles(due)
        self._latest = due["open_time"].iloc[-1]
        return len(due)

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
            elif not waiting_logged and self._store.read_clock() is None:
                logger.info("no sim clock yet: waiting (reset it with `btcmlops clock reset`)")
                waiting_logged = True
            return self._interval_s

        keep_trying(round_, stop, self._backoff, "feed step", on_round=on_round, log=logger)
