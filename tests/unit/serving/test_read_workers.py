"""The read workers: pages built in a process of their own are the pages built here, the worker runs at
a lower CPU priority, and a worker that dies is a 503 for the page, then a new pool for the next."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from btcmlops.serving import pages
from btcmlops.serving.errors import ApiError
from btcmlops.serving.read_workers import ReadWorkers
from btcmlops.settings import ServeSettings, Settings
from btcmlops.store import LoggedPrediction, PriceStore

SettingsCopy = Callable[..., Settings]
T0 = datetime(2021, 3, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.mark.slow  # two worker processes started, each importing the page code (seconds on a busy machine)
def test_a_read_worker_builds_the_same_pages_at_a_lower_priority_and_a_dead_one_is_replaced(
    settings_copy: SettingsCopy,
) -> None:
    settings = settings_copy()
    store = PriceStore(settings.store.url or "", settings.store)
    store.log_predictions(
        [
            LoggedPrediction(T0 + n * HOUR, T0 + (n + 1) * HOUR, 100.0 + n, 99.0, 1 + n % 2, T0, T0)
            for n in range(30)
        ]
    )
    workers = ReadWorkers(ServeSettings(read_workers=1, read_worker_nice=5), store)
    args = (T0, T0 + 40 * HOUR, 20, None, {1: T0 - HOUR}, 0.8)  # v2's window: unknown
    here = pages.predictions_page(store, *args)

    async def scenario() -> None:
        assert workers.pids() == []  # none before the first long read
        assert await workers.run(pages.predictions_page, *args) == here  # built here: no worker up yet
        assert (workers.pages_here, workers.pages_in_workers) == (1, 0)
        assert await workers.wait_until_ready()  # that read started them, in the background
        there = await workers.run(pages.predictions_page, *args)
        assert workers.pages_in_workers == 1
        assert there == here
        assert there.next_cursor is not None
        assert there.unknown_versions == {2}
        candles = (T0, T0 + 99 * HOUR, 70)
        assert await workers.run(pages.candles_page, *candles) == pages.candles_page(store, *candles)
        (pid,) = workers.pids()
        assert pid != os.getpid()
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(os.getpriority(os.PRIO_PROCESS, 0) + 5, 19)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(ApiError) as refused:
            await workers.run(pages.predictions_page, *args)
        assert refused.value.status == 503
        assert "read worker died" in refused.value.detail
        assert "Retry-After" in (refused.value.headers or {})
        assert await workers.run(pages.predictions_page, *args) == here  # here, while a new pool starts
        assert workers.restarts == 1
        assert await workers.wait_until_ready()
        assert await workers.run(pages.predictions_page, *args) == here
        assert workers.pages_in_workers == 3
        assert [p for p in workers.pids() if p != pid] == workers.pids() != []

    try:
        asyncio.run(scenario())
    finally:
        workers.close()
        store.dispose()
