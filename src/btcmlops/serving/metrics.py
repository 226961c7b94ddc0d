"""Prometheus metrics of one service instance, on their own registry (nothing global)."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
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
