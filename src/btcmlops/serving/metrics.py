"""Prometheus metrics of one service instance, on their own registry (nothing global)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ServiceMetrics:
    """Requests, latency, the served version, swaps and the age of the last registry check."""

    def __init__(self, registry_check_age: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "btcmlops_requests", "HTTP requests by endpoint and status.", ["endpoint", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "btcmlops_request_seconds", "HTTP request latency by endpoint.", ["endpoint"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )  # fmt: skip
        self.served_version = Gauge(
            "btcmlops_served_model_version",
            "Version of the model being served (0: none).",
            registry=self.registry,
        )
        self.swaps = Counter("btcmlops_model_swaps", "Champion swaps completed.", registry=self.registry)
        self.swap_failures = Counter(
            "btcmlops_model_swap_failures", "Failed registry checks or model loads.", registry=self.registry
        )
        self.store_failures = Counter(
            "btcmlops_store_failures",
            "Failed rounds of the store watcher (served version report, new and late candles).",
            registry=self.registry,
        )
        self.predictions = Counter("btcmlops_predictions", "Forecasts served.", registry=self.registry)
        self.rejections = Counter(
            "btcmlops_model_rejections",
            "Champion versions refused by the load check (implausible forecasts, a training window ahead).",
            registry=self.registry,
        )
        self.shadow_failures = Counter(
            "btcmlops_shadow_failures",
            "Failed loads of the challenger or rounds of its shadow scoring (nothing served is affected).",
            registry=self.registry,
        )
        self.rebuilds = Counter(
            "btcmlops_snapshot_rebuilds",
            "Times the candles in memory were built again for a late or corrected candle.",
            registry=self.registry,
        )
        age = Gauge(
            "btcmlops_registry_check_age_seconds",
            "Seconds since the registry last answered (-1: never).",
            registry=self.registry,
        )
        age.set_function(registry_check_age)

    def watch_prediction_log(self, log: PredictionLogStats) -> None:
        """Show the prediction log's backlog, dropped and written rows and write-ahead bytes."""
        self.registry.register(PredictionLogCollector(log))


class PredictionLogStats(Protocol):
    """What the prediction log writer counts (``serving.prediction_log.PredictionLogWriter``)."""

    written: int
    dropped: int
    replayed: int

    @property
    def backlog(self) -> int: ...

    @property
    def wal_bytes(self) -> int: ...


class PredictionLogCollector(Collector):
    """Reads the writer's counts at scrape time (nothing to update on the request path)."""

    def __init__(self, log: PredictionLogStats) -> None:
        self._log = log

    def describe(self) -> Iterable[Metric]:
        return self._families(backlog=0, dropped=0, written=0, replayed=0, wal_bytes=0)

    def collect(self) -> Iterable[Metric]:
        log = self._log
        return self._families(
            backlog=log.backlog,
            dropped=log.dropped,
            written=log.written,
            replayed=log.replayed,
            wal_bytes=log.wal_bytes,
        )

    @staticmethod
    def _families(*, backlog: int, dropped: int, written: int, replayed: int, wal_bytes: int) -> list[Metric]:
        prefix = "btcmlops_prediction_log"
        return [
            GaugeMetricFamily(f"{prefix}_backlog", "Served forecasts waiting for the store.", value=backlog),
            CounterMetricFamily(
                f"{prefix}_dropped", "Served forecasts not logged: the backlog was full.", value=dropped
            ),
            CounterMetricFamily(f"{prefix}_written", "Logged forecasts the store took.", value=written),
            CounterMetricFamily(
                f"{prefix}_replayed",
                "Forecasts taken over at start from the write-ahead files of a process that died.",
                value=replayed,
            ),
            GaugeMetricFamily(
                f"{prefix}_wal_bytes", "Bytes in this process's write-ahead files.", value=wal_bytes
            ),
        ]


class MetricsMiddleware:
    """Counts and times every request by route template, outside the request's own work."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", "unmatched")
            self.metrics.requests.labels(endpoint, str(status)).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
