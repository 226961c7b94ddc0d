"""Where a replay fits its models: in the replaying process, on a pool of local processes, or on Dask.

A model trained through month m depends on the candles through m and on the model settings, never
on a contest's outcome. So once the contest first asks for a fit (the first champion's month; the
warm-up months train nothing), :class:`FitsAhead` submits that month's fit and every later month's
at once, and hands the contest each model when its month closes. Everything else stays in the
replaying process, in the order a serial replay does it: the contest's plan, MLflow's runs, every
registry change. The fitted models are the same wherever they are fitted (LightGBM is deterministic
with a fixed number of threads, ``BTCMLOPS_MODEL__NUM_THREADS``), so are the replay's outputs.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING

from btcmlops.settings import ModelSettings, ReplaySettings

if TYPE_CHECKING:
    from btcmlops.calendar import Month
    from btcmlops.contest.records import CandleSource
    from btcmlops.contest.training import Fitted

SERIAL, PROCESSES, DASK = "serial", "processes", "dask"


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container or ``taskset`` narrows)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_count(replay: ReplaySettings, model: ModelSettings, cores: int | None = None) -> int:
    """How many processes fit at once: as set, or the cores divided by one fit's threads.

    Each fit uses ``model.num_threads`` (one by default); N workers of T threads on C cores keep
    N x T <= C, since OpenMP threads spinning on a busy core slow every fit many times over.
    """
    if replay.workers is not None:
        return replay.workers
    return max(1, (cores or available_cores()) // model.num_threads)


class FitsAhead:
    """The contest's ``fit`` (``Contest(fit=...)``): every month's model fitted ahead on an executor.

    The first month the contest asks for is fitted with every later one of ``months`` (the months a
    challenger may be trained through), all submitted at once in calendar order, so the pool works on
    the next months' fits while this process scores, decides and logs. A month asked for that was not
    submitted is submitted then. Fits never asked for (a month without a contest trains nothing) are
    cancelled by :meth:`cancel_unused`.
    """

    def __init__(
        self, executor: Executor, candles: CandleSource, months: Sequence[Month], config: ModelSettings
    ) -> None:
        self._executor = executor
        self._candles = candles
        self._months = list(months)
        self._config = config
        self._futures: dict[Month, Future[Fitted]] = {}
        self.submitted: list[Month] = []
        """Every month whose fit was submitted, in the order submitted."""

    def __call__(self, month: Month) -> Fitted:
        """The model trained through ``month``, waiting for its fit to finish."""
        if not self.submitted:  # the first fit asked for: submit it and every later one
            for ahead in [month, *(m for m in self._months if m > month)]:
                self._submit(ahead)
        future = self._futures.pop(month, None) or self._submit(month, keep=False)
        return future.result()

    def cancel_unused(self) -> None:
        """Cancel the fits no month asked for (a running one finishes; its model is dropped)."""
        for future in self._futures.values():
            future.cancel()
        self._futures.clear()

    def _submit(self, month: Month, *, keep: bool = True) -> Future[Fitted]:
        from btcmlops.contest.training import train_on_candles

        # The candles exactly as the contest reads them when it closes the month: up to its last hour.
        candles = self._candles.read_candles(end=month.last_hour.to_pydatetime())
        future = self._executor.submit(train_on_candles, candles, month, self._config)
        self.submitted.append(month)
        if keep:
            self._futures[month] = future
        return future


def _ready(_: int) -> int:
    """Import what a fit needs (pandas, LightGBM), so that a worker is warm when its first fit comes.

    Submitted once per worker, which also makes the pool start every worker at once. This module
    imports none of it at its top, so that the replaying process can start the pool first.
    """
    import btcmlops.contest.training  # noqa: F401

    return os.getpid()


@contextmanager
def open_executor(replay: ReplaySettings, model: ModelSettings) -> Iterator[Executor | None]:
    """The executor ``replay.executor`` names, started and ready, closed on exit (None: serial).

    ``processes``: a pool of ``worker_count`` spawned processes, all started now so that their imports
    (pandas and LightGBM, not MLflow: about 2 CPU-seconds each) overlap the replay's own start (the
    CLI opens the executor before it imports the replay, which costs as much again). Spawned,
    not forked: a fork of a process whose threads (MLflow's, OpenMP's, a test harness's) hold a lock
    leaves the child waiting on it for ever, as a fork after a serial replay in one process did here.
    ``dask``: a client of the scheduler at ``replay.scheduler``, or of a local cluster of
    ``worker_count`` single-threaded worker processes (no dashboard) that is closed with it.
    """
    if replay.executor == SERIAL:
        yield None
        return
    workers = worker_count(replay, model)
    if replay.executor == PROCESSES:
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        try:
            for worker in range(workers):  # start every worker now; nothing waits for them here
                pool.submit(_ready, worker)
            yield pool
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return
    from distributed import Client, LocalCluster

    # distributed's constructors carry no annotations: hence the ignores below.
    if replay.scheduler is not None:
        with Client(replay.scheduler) as client:  # type: ignore[no-untyped-call]
            yield client.get_executor(pure=False)
        return
    with (
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,  # not its own teardown notes ("still alive, killing")
        ) as cluster,
        Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        yield client.get_executor(pure=False)
