"""``ReadWorkers``: where the long reads' pages are built, off the interpreter that answers forecasts.

A pool of ``BTCMLOPS_SERVE__READ_WORKERS`` processes (``spawn``: nothing of the service's state or
threads is copied), each with its own engine on the same store, built from the same settings; each
runs ``serving.pages`` and answers with the page's bytes, which the service sends as they are. The
service's interpreter only waits, so ``/predict`` and ``/readyz`` never queue behind a page's rows or
JSON; the workers also run at a lower CPU priority (``read_worker_nice``), so on a busy machine the
forecasts get the cores first. ``read_workers=0`` builds the pages on a thread of the service's own
interpreter instead (no processes: a test, or a machine that cannot spare the memory).

Life: the workers start with the first long read (a service never asked for a page starts none), in the
background: until they are up (seconds of imports on a busy machine) pages are built on a thread here,
so no read ever waits for a worker's start and a store outage at the first read is a 503 within the
read's timeout, as without workers. They end with the service: at its stop they are asked to end (a page
under way finishes first), and each watches the service's process and exits within a second of it going,
``kill -9`` included. A worker that dies (killed, out of memory) breaks the pool: the page asked of it,
and any other under way, is answered 503 (``Retry-After``) saying so, and the next read starts a new
pool.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from btcmlops.serving import pages
from btcmlops.serving.errors import RETRY_AFTER, ApiError
from btcmlops.serving.state import StoreUnavailableError
from btcmlops.settings import ServeSettings
from btcmlops.store import PriceStore

logger = logging.getLogger(__name__)

T = TypeVar("T")

START_TIMEOUT_S = 120.0
"""Longest ``wait_until_ready`` waits for a new pool's workers (processes importing the page code, on a
busy machine); reads never wait for them."""


class ReadWorkersDiedError(Exception):
    """A read worker died while its pool had work (its pages: 503; the next read starts a new pool)."""


class ReadWorkers:
    """Build pages in a pool of worker processes (or, with ``read_workers=0``, on a thread)."""

    def __init__(self, settings: ServeSettings, store: PriceStore) -> None:
        self.size = settings.read_workers
        self._nice = settings.read_worker_nice
        self._store = store
        self._pool: ProcessPoolExecutor | None = None
        self._started: list[Future[int]] = []
        self.restarts = 0
        """Pools started again after a worker died."""
        self.pages_in_workers = 0
        """Pages built by the workers."""
        self.pages_here = 0
        """Pages built on a thread here (no workers set, or none up yet)."""

    @property
    def in_processes(self) -> bool:
        """Whether pages are built in worker processes (else: on a thread of the service)."""
        return self.size > 0

    def pids(self) -> list[int]:
        """The worker processes alive now (none before the first long read)."""
        pool = self._pool
        processes = getattr(pool, "_processes", None) or {}  # the pool does not say otherwise
        return [pid for pid, process in dict(processes).items() if process.is_alive()]

    async def run(self, page: Callable[..., T], *args: Any) -> T:
        """``page(store, *args)`` in a worker, or on a thread while none is up (or with none set), awaited.

        Raises:
            ApiError: 503 when a worker died meanwhile (the pool is started again for the next read).
            StoreUnavailableError: The store failed the page's read.
        """
        pool = self._ready_pool()
        if pool is None:
            self.pages_here += 1
            return await asyncio.to_thread(page, self._store, *args)
        try:
            result: T = await asyncio.wrap_future(pool.submit(pages.in_worker, page, *args))
        except pages.PageStoreError as error:
            raise StoreUnavailableError(str(error)) from None
        except BrokenProcessPool:
            self._replace(pool)
            raise ApiError(
                503,
                "a read worker died while building this page: the read workers are being started again, "
                "ask again in a moment",
                headers=RETRY_AFTER,
            ) from None
        self.pages_in_workers += 1
        return result

    async def start(self) -> None:
        """Start the workers if there are none, without waiting for them (awaited by a long read in its
        turn: the read is built here until they are up)."""
        if self.in_processes and self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.size,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=pages.start_worker,
                initargs=(self._store.url, self._store.settings, os.getpid(), self._nice),
            )
            # One call per worker: each finds no idle worker and starts one, so all start at once (the
            # pool would otherwise start the second only when a page finds the first one busy).
            self._started = [self._pool.submit(pages.worker_ready) for _ in range(self.size)]
            logger.info("starting %d read worker(s)", self.size)

    async def wait_until_ready(self, timeout_s: float = START_TIMEOUT_S) -> bool:
        """Start the workers if needed and wait until all are up; False if they could not start in time."""
        await self.start()
        started = self._started
        if not started:
            return False
        done, _ = await asyncio.wait([asyncio.wrap_future(future) for future in started], timeout=timeout_s)
        return len(done) == len(started) and self._ready_pool() is not None

    def _ready_pool(self) -> ProcessPoolExecutor | None:
        """The pool if every worker is up; None while they start (or with none set). A pool whose workers
        failed to start is dropped: the next read starts another."""
        pool, started = self._pool, self._started
        if pool is None or not all(future.done() for future in started):
            return None
        if any(future.cancelled() or future.exception() is not None for future in started):
            self._replace(pool)
            return None
        return pool

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        """Drop a broken pool (once, whichever page found it broken first); the next read starts one."""
        if self._pool is not broken:
            return
        logger.error("a read worker died: starting the read workers again at the next long read")
        self._pool, self._started = None, []
        self.restarts += 1
        broken.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Ask the workers to end (a page under way finishes first; a worker still at it when the
        service has gone exits by its own parent check)."""
        pool, self._pool, self._started = self._pool, None, []
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
