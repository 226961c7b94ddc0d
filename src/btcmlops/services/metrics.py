"""Prometheus metrics of the feed and the trainer, each on its own registry and HTTP endpoint.

Two kinds. The **pipeline's state**, read from the store at scrape time (``PipelineCollector``): when
the trainer's lease expires and which months have closed in sim time without a decision. The store
holds them whoever is alive, so the feed exports them too and the alerts on a dead trainer still fire
(docs/monitoring.md: ``BtcmlopsTrainerLeaseNotRenewed``, ``BtcmlopsMonthNotDecided``). The
**trainer's own** rounds (``TrainerMetrics``): what only the live process knows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from btcmlops.calendar import Month, last_closed_month, months_between
from btcmlops.store import PriceStore

logger = logging.getLogger(__name__)

LEASE_NAME = "trainer"
"""The store's lease that makes one trainer at a time (``TrainerService``)."""


class PipelineCollector(Collector):
    """The trainer's lease and the months not decided yet, read from the store at every scrape.

    A scrape that cannot read the store exports none of these families (and says why in the log):
    a missing series fires nothing, and the store's own alerts cover an unreachable store.
    """

    def __init__(
        self,
        store: PriceStore,
        registered_model: str,
        *,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._model = registered_model
        self._wall_clock = wall_clock

    def describe(self) -> Iterable[Metric]:
        return _pipeline_families(lease_expiry=0.0, undecided=[])

    def collect(self) -> Iterable[Metric]:
        try:
            lease = self._store.journal.lease(LEASE_NAME)
            undecided = self.undecided_months()
        except Exception as error:  # the store is down or locked: no figure rather than a wrong one
            logger.warning("metrics: could not read the pipeline's state from the store (%s)", error)
            return []
        expiry = lease.expires_at.timestamp() if lease is not None else 0.0
        return _pipeline_families(lease_expiry=expiry, undecided=undecided)

    def undecided_months(self) -> list[Month] | None:
        """The months whose last hour has closed in sim time and that are not closed (decided) yet,
        oldest first; None without a clock or a candle (nothing to close)."""
        clock = self._store.read_clock()
        first = self._store.earliest_candle_time()
        if clock is None or first is None:
            return None
        open_month = self._store.journal.first_open_month(self._model, Month.of(first))
        closed = last_closed_month(clock.sim_now(self._wall_clock()))
        return months_between(open_month, closed) if open_month <= closed else []


def _pipeline_families(*, lease_expiry: float, undecided: list[Month] | None) -> list[Metric]:
    families: list[Metric] = [
        GaugeMetricFamily(
            "btcmlops_trainer_lease_expiry_timestamp_seconds",
            "When the trainer's lease expires unless renewed, unix seconds (0: no trainer holds it).",
            value=lease_expiry,
        )
    ]
    if undecided is not None:
        oldest = undecided[0].next().start.timestamp() if undecided else 0.0
        families += [
            GaugeMetricFamily(
                "btcmlops_pipeline_undecided_months",
                "Months whose last hour has closed in sim time and that the trainer has not closed yet.",
                value=len(undecided),
            ),
            GaugeMetricFamily(
                "btcmlops_pipeline_oldest_undecided_month_end_timestamp_seconds",
                "The end (sim time, unix seconds) of the oldest of them (0: none).",
                value=oldest,
            ),
        ]
    return families


class TrainerMetrics:
    """What the live trainer process counts: its rounds, the months it closed, whether it holds the lease."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.rounds = Counter(
            "btcmlops_trainer_rounds", "Trainer rounds completed (a look at the clock).", registry=registry
        )
        self.round_failures = Counter(
            "btcmlops_trainer_round_failures",
            "Trainer rounds that failed (MLflow or the store down); each is retried.",
            registry=registry,
        )
        self.months_closed = Counter(
            "btcmlops_trainer_months_closed",
            "Months this process closed (decided, or recorded as warming up or no contest).",
            registry=registry,
        )
        self.last_round = Gauge(
            "btcmlops_trainer_last_round_timestamp_seconds",
            "When this process last completed a round, unix seconds (0: none yet).",
            registry=registry,
        )
        self.lease_held = Gauge(
            "btcmlops_trainer_lease_held",
            "1 while this process surely holds the trainer's lease, else 0 (waiting for it, or lost).",
            registry=registry,
        )

    def round_done(self, months_closed: int) -> None:
        """A round completed: count it and the months it closed."""
        self.rounds.inc()
        self.months_closed.inc(months_closed)
        self.last_round.set(time.time())


def pipeline_registry(store: PriceStore, registered_model: str) -> CollectorRegistry:
    """A registry holding the pipeline's state read from ``store`` (what the feed exports)."""
    registry = CollectorRegistry()
    registry.register(PipelineCollector(store, registered_model))
    return registry


@contextmanager
def metrics_endpoint(registry: CollectorRegistry, host: str, port: int | None) -> Iterator[None]:
    """Serve ``registry`` at http://host:port/metrics from a daemon thread (prometheus-client's own
    server) while the block runs; no port: serve nothing (the native default)."""
    if port is None:
        yield
        return
    server, thread = start_http_server(port, addr=host, registry=registry)
    logger.info("metrics on http://%s:%d/metrics", host, port)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
