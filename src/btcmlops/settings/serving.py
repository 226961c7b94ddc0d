"""The inference service, and the metrics endpoints every process serves."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    model_validator,
)


class ServeSettings(BaseModel):
    """The inference service."""

    host: str = Field(default="127.0.0.1", description="Address `btcmlops serve` listens on.")
    port: int = Field(
        default=8000,
        ge=1,
        le=65535,
        description=(
            "Port `btcmlops serve` (and `make serve`) listens on. Moved, the clients must follow: "
            "BTCMLOPS_CLIENT__API_URL (else the paced clock stalls at the first hour, waiting for "
            "forecasts nobody asks) and BTCMLOPS_DASHBOARD__API_URL; stack.env derives both from it."
        ),
    )
    control_key: SecretStr | None = Field(
        default=None,
        description=(
            "Control key (header X-API-Key) the inference service asks of every change over HTTP: "
            "POST /clock, /model/promote and /model/rollback (and the dashboard's clock controls, which "
            "send it); unset: the clock and the champion cannot be changed over HTTP. Was "
            "BTCMLOPS_CLOCK__API_KEY (still read, with a warning)."
        ),
    )
    poll_interval_s: float = Field(default=2.0, gt=0, description="How often the champion alias is checked.")
    max_backoff_s: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Longest wait between failed checks of the registry or the store (cut short when it answers "
            "again)."
        ),
    )
    registry_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="HTTP timeout of one registry call or model download read (no MLflow retries).",
    )
    store_timeout_s: float = Field(
        default=2.0,
        gt=0,
        description=(
            "Longest a request (GET /clock, /readyz, a forecast that must read new candles or the clock) "
            "waits on the price store; past it: 503 naming the store."
        ),
    )
    max_batch: int = Field(default=500, ge=1, description="Most timestamps in one batch request.")
    vet_hours: int = Field(
        default=168, ge=1, description="Known hours a new champion must forecast plausibly before it serves."
    )
    vet_max_mae_ratio: float = Field(
        default=2.0,
        gt=1,
        description="Most a new champion's MAE on those hours may be, in times naive's; more: refused.",
    )
    max_read_rows: int = Field(
        default=10_000,
        ge=1,
        description="Most rows in one page of /candles or /predictions (then: Link rel=next).",
    )
    max_concurrent_reads: int = Field(
        default=2,
        ge=1,
        description=(
            "Long reads (/candles, /predictions) served at once; the others wait, then get 503. A page is "
            "CPU work in Python (rows, JSON): more at once than the cores only slows forecasts and /readyz."
        ),
    )
    read_workers: int = Field(
        default=2,
        ge=0,
        description=(
            "Processes that build the long reads' pages (the rows and their JSON), each with its own store "
            "connection, so forecasts and /readyz never wait on a page in the service's interpreter; "
            "started at the first long read (pages are built on a thread of the service until they are "
            "up), ended with the service. 0: pages are always built on a thread of the service itself. "
            "More than max_concurrent_reads are never busy."
        ),
    )
    read_worker_nice: int = Field(
        default=0,
        ge=0,
        le=19,
        description=(
            "How much lower the read workers' CPU priority is than the service's (a nice increment). "
            "0 (the default): the same priority, since a niced worker yields to every other process on "
            "the host too (the trainer's fits on a laptop stack: the dashboard's pages stall); 10 where "
            "the api has its host or container to itself, so forecasts get the cores first."
        ),
    )
    read_wait_s: float = Field(
        default=2.0, gt=0, description="How long a long read waits for its turn before 503 (Retry-After)."
    )
    long_read_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description=(
            "Longest a long read (a page of /candles or /predictions) may take once its turn came; past it: "
            "503 naming the store. Longer than store_timeout_s: a page of 10,000 rows takes seconds on a "
            "busy machine, and a slow page is not an outage."
        ),
    )
    log_flush_interval_s: float = Field(
        default=1.0,
        gt=0,
        description="How often served forecasts are written to the store's prediction log, in batches.",
    )
    log_wal_dir: Path | None = Field(
        default=None,
        description=(
            "Directory of the prediction log's write-ahead files (a subdirectory per store); every "
            "forecast is written to one before it is answered, and a restart replays what a dead "
            "process left. Unset: <home>/serve/prediction-log."
        ),
    )
    log_wal_fsync: bool = Field(
        default=False,
        description=(
            "fsync the write-ahead file at every flush: a machine crash then loses at most one flush "
            "interval of forecasts (off: what the OS had not written back; kill -9 loses nothing either way)."
        ),
    )
    log_max_backlog: int = Field(
        default=100_000,
        ge=1,
        description=(
            "Most forecasts waiting for the store (in memory and in the write-ahead file); beyond it new "
            "ones are answered but not logged, and counted (btcmlops_prediction_log_dropped_total)."
        ),
    )
    shadow_challenger: bool = Field(
        default=True,
        description=(
            "Load the `challenger` alias beside the champion, never serving it: its shadow forecasts are "
            'scored live (role="challenger") and the running contest is in GET /contest/live and '
            "btcmlops_contest_live_*. Off: the champion alone (one model in memory; /shadow answers empty)."
        ),
    )
    live_contest_interval_s: float = Field(
        default=2.0,
        ge=0,
        description=(
            "Shortest wall time between two judgements of the shadow month in progress while only new "
            "hours arrive (a new month or contestant is judged at once): each reads the candles and "
            "forecasts the month so far with both sides, off the request path."
        ),
    )
    refresh_min_interval_s: float = Field(
        default=0.02, ge=0, description="Shortest time between two reads of new candles from the store."
    )
    prometheus_url: str | None = Field(
        default=None,
        description=(
            "Base URL of the Prometheus server that scrapes this service and evaluates the alert rules "
            "(deploy/prometheus/rules): GET /alerts relays the alerts it has pending or firing, for the "
            "dashboard. Unset: /alerts answers that no Prometheus is configured."
        ),
    )
    prometheus_timeout_s: float = Field(
        default=2.0, gt=0, description="Longest wait for Prometheus's answer to GET /alerts; past it: 503."
    )
    max_body_bytes: int = Field(
        default=65_536,
        ge=1024,
        description=(
            "Longest request body in bytes, counted as it arrives (with or without Content-Length); "
            "longer: 413. 64 KiB holds a full batch of timestamps or a few hundred candles."
        ),
    )
    header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description=(
            "Longest a client may take to send a request's headers, from its connection (or the end of "
            "the previous answer on a kept-alive one); past it: 408 and the connection is closed."
        ),
    )
    body_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description=(
            "Longest a client may take to send a request's body once its headers are in; past it: 408 and "
            "the connection is closed (a 64 KiB body at an ordinary speed takes milliseconds)."
        ),
    )
    keep_alive_timeout_s: int = Field(
        default=5,
        ge=1,
        le=300,
        description=(
            "How long a kept-alive connection may stay silent after an answer before it is closed (whole "
            "seconds, at most header_timeout_s)."
        ),
    )
    max_connections: int = Field(
        default=4096,
        ge=1,
        le=1_000_000,
        description=(
            "Most connections open at once (per process); beyond: 503 with Retry-After and the connection "
            "closed at once. Lowered, with a warning, where the open-file limit cannot hold it."
        ),
    )
    drift_psi_threshold: float = Field(
        default=0.25,
        gt=0.1,
        description=(
            "A feature's PSI (last 7 sim days against the champion's training window) above which GET "
            "/drift calls it drifted; 0.1 up to it is moderate. The FeatureDrift alert's bound is the "
            "default (deploy/prometheus/rules): change both together."
        ),
    )

    @model_validator(mode="after")
    def _keep_alive_within_header_timeout(self) -> Self:
        if self.keep_alive_timeout_s > self.header_timeout_s:
            raise ValueError(
                f"keep_alive_timeout_s ({self.keep_alive_timeout_s} s) is longer than header_timeout_s "
                f"({self.header_timeout_s:g} s), which bounds a kept-alive connection's wait for its next "
                "request too: lower BTCMLOPS_SERVE__KEEP_ALIVE_TIMEOUT_S or raise "
                "BTCMLOPS_SERVE__HEADER_TIMEOUT_S"
            )
        return self


class MetricsSettings(BaseModel):
    """Prometheus endpoints of the feed and the trainer (the inference service serves its own /metrics).

    Off natively (no port); compose and the Helm chart turn them on, each container on the same port.
    """

    host: str = Field(
        default="127.0.0.1",
        description="Address the feed's and the trainer's metrics endpoints listen on (0.0.0.0: all).",
    )
    feed_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description=(
            "Port of `btcmlops feed`'s Prometheus endpoint (/metrics): the pipeline's state read from the "
            "store (the trainer's lease expiry, months closed in sim time and not decided). Unset: none."
        ),
    )
    trainer_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description=(
            "Port of `btcmlops trainer`'s Prometheus endpoint (/metrics): its rounds, months closed, its "
            "lease, and the same pipeline state as the feed's. Unset: none."
        ),
    )
