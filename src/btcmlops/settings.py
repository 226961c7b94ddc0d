"""The one settings object of btcmlops.

Every knob lives here, read from environment variables with the prefix ``BTCMLOPS_`` (nested groups
use ``__``, e.g. ``BTCMLOPS_STORE__URL``) or from a ``.env`` file. An entry point builds one
``Settings`` and passes it (or the group a component needs) down; nothing below the entry points reads
the environment, so tests build their own settings and nothing happens at import time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from btcmlops.speed import MAX_SPEED

EMBEDDED_DATA_FILE = Path(__file__).resolve().parent / "data" / "embedded" / "btc_usdt_1h.csv.gz"
"""The two shipped years (2023-2024) of hourly BTC/USDT candles, the replay's default input."""


class ConfigurationError(ValueError):
    """Settings that validate but cannot be honoured here (a library not installed, no GPU).

    Waiting cannot heal it: a service stops at once and the CLI exits with status 2.
    """


class StoreSettings(BaseModel):
    """Where prices, contest decisions, the prediction log and the registry's change journal live."""

    url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL of the price store, e.g. mysql+pymysql://user:pass@host/db. "
            "Unset: an SQLite file under the home directory (or the replay's output directory)."
        ),
    )
    connect_timeout_s: float = Field(
        default=5.0, gt=0, description="MySQL/MariaDB: longest wait for a connection to open."
    )
    read_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description=(
            "MySQL/MariaDB: longest wait for the server's next bytes during a query; a frozen server "
            "fails the query after this instead of hanging."
        ),
    )
    write_timeout_s: float = Field(
        default=10.0, gt=0, description="MySQL/MariaDB: longest wait for the server to take a write."
    )
    pool_timeout_s: float = Field(
        default=5.0, gt=0, description="Longest wait for a free pooled connection when all are in use."
    )
    busy_timeout_s: float = Field(
        default=5.0, ge=0, description="SQLite: longest wait for another writer's lock."
    )
    sqlite_wal: bool = Field(
        default=False,
        description=(
            "SQLite: write-ahead log with synchronous=NORMAL, so a commit does not wait for the disk (on a "
            "busy disk ~20 ms a commit with the rollback journal, under 0.1 ms with it). A live stack "
            "commits a candle and the clock row every sim hour, so at 48 sim h/s it needs it (`make stack` "
            "sets it). A power cut may lose the last commits, never the file; the mode stays with the "
            "file, and every process on it must then be able to share its -wal and -shm files (no "
            "network file system)."
        ),
    )
    change_grace_s: float = Field(
        default=30.0,
        ge=0,
        description=(
            "A change by hand (promote, rollback, an external alias move's record) pending in the "
            "registry journal longer than this is taken for cut off (its process died or gave up) and "
            "rolled forward from its plan by the trainer or an inference service. Longer than any live "
            "change takes, so a change still in flight is never raced."
        ),
    )
    change_check_s: float = Field(
        default=10.0,
        gt=0,
        description=(
            "How often the trainer and each inference service look for such a change; one is repaired "
            "at most change_grace_s + change_check_s after it was begun."
        ),
    )


class MlflowSettings(BaseModel):
    """Where runs, metrics and model versions are recorded."""

    tracking_uri: str | None = Field(
        default=None,
        description=(
            "MLflow tracking URI, e.g. http://mlflow:5000. Unset: an embedded SQLite store with local "
            "artifacts under the home directory (or the replay's output directory). In `make stack` it "
            "follows MLFLOW_PORT (stack.env)."
        ),
    )
    experiment: str = Field(
        default="btc-next-hour", description="The one MLflow experiment: every training and contest run."
    )
    registered_model: str = Field(
        default="btc-next-hour-close",
        description="The one registered model whose versions compete (aliases champion and challenger).",
    )


class DataSettings(BaseModel):
    """Where candles come from."""

    file: Path = Field(default=EMBEDDED_DATA_FILE, description="Candle file the replay uses by default.")
    symbol: str = Field(
        default="BTCUSDT",
        description="Binance spot symbol `btcmlops data fetch` downloads (unless --symbol).",
    )
    archive_base_url: str = Field(
        default="https://data.binance.vision",
        description=(
            "Base URL of Binance's public data archive (monthly kline zips and CHECKSUM files), where "
            "`btcmlops data fetch` downloads."
        ),
    )
    fetch_timeout_s: float = Field(
        default=10.0, gt=0, description="HTTP timeout of one download by `btcmlops data fetch`."
    )


class ModelSettings(BaseModel):
    """The forecaster: family, device, feature set and hyperparameters, logged with every model.

    The hyperparameters are LightGBM's; the XGBoost family maps them onto its own
    (``btcmlops.model.forecaster.xgboost_params``).
    """

    family: Literal["lightgbm", "xgboost"] = Field(
        default="lightgbm",
        description=(
            "Model library: lightgbm (the default, CPU) or xgboost (the `btcmlops[xgboost]` extra; "
            "can train on a GPU). Either enters the same contest."
        ),
    )
    device: Literal["cpu", "cuda"] = Field(
        default="cpu",
        description=(
            "Where the trainer fits: cpu, or cuda (family xgboost only; an NVIDIA GPU must be visible, "
            "else the trainer refuses to start). Forecasts are always made on the CPU."
        ),
    )
    feature_set: str = Field(
        default="v1",
        description=(
            "Feature set the forecaster is trained on, logged with every model; loading a version with "
            "an unknown feature set is refused."
        ),
    )
    train_window_months: int = Field(
        default=0,
        ge=0,
        description=(
            "Training window of every fit (the replay's and the live trainer's): 0, an expanding window "
            "(every hour from the first candle through the month trained through); N, a rolling window "
            "of the last N months through it. The first champion is fitted on it too."
        ),
    )
    num_boost_round: int = Field(default=300, ge=1, description="Boosting rounds (trees) of one fit.")
    learning_rate: float = Field(default=0.03, gt=0, description="Shrinkage of each tree (XGBoost: eta).")
    num_leaves: int = Field(
        default=15, ge=2, description="Most leaves of one tree (XGBoost: max_leaves, leaf-wise growth)."
    )
    min_data_in_leaf: int = Field(
        default=200, ge=1, description="Fewest training rows in a leaf (XGBoost: min_child_weight)."
    )
    feature_fraction: float = Field(
        default=0.8, gt=0, le=1, description="Share of features each tree sees (XGBoost: colsample_bytree)."
    )
    bagging_fraction: float = Field(
        default=0.8, gt=0, le=1, description="Share of rows each bagging round draws (XGBoost: subsample)."
    )
    bagging_freq: int = Field(
        default=1, ge=0, description="Bag every this many rounds; 0: no bagging (XGBoost: subsample 1)."
    )
    lambda_l2: float = Field(
        default=1.0, ge=0, description="L2 regularisation of leaf values (XGBoost: lambda)."
    )
    interval_level: float = Field(
        default=0.8,
        ge=0.5,
        le=0.99,
        description=(
            "Level of the central interval served with every forecast (0.8: the actual close should fall "
            "inside it in 80 % of hours); from 0.5 to 0.99. Recorded with each version, which keeps it."
        ),
    )
    interval_calibration_hours: int = Field(
        default=720,
        ge=24,
        description=(
            "Newest training hours held out of the interval's quantile boosters to calibrate them "
            "(conformalised quantile regression); the point booster still trains on every hour."
        ),
    )
    interval_boost_round: int = Field(
        default=100, ge=1, description="Boosting rounds of each of the interval's two quantile boosters."
    )
    interval_learning_rate: float = Field(
        default=0.05, gt=0, description="Shrinkage of each tree of the interval's quantile boosters."
    )
    seed: int = Field(default=42, description="Random seed of every fit (bagging and feature sampling).")
    num_threads: int = Field(
        default=1,
        ge=1,
        description=(
            "LightGBM threads (XGBoost: nthread) for one fit. One by default: the trainer shares its "
            "cores with the other services, and spinning OpenMP workers on a busy machine slow a fit "
            "many times over (bench/shared_cpu.py); the forecasts are the same with any number."
        ),
    )

    @model_validator(mode="after")
    def _cuda_needs_xgboost(self) -> Self:
        if self.device == "cuda" and self.family != "xgboost":
            raise ValueError(
                f"device=cuda needs family=xgboost (LightGBM's wheel has no CUDA learner), got "
                f"family={self.family}: set BTCMLOPS_MODEL__FAMILY=xgboost or BTCMLOPS_MODEL__DEVICE=cpu"
            )
        return self


class ContestSettings(BaseModel):
    """The champion/challenger rule."""

    first_train_months: int = Field(
        default=12, ge=1, description="Months of data the first champion (v1) is trained on."
    )
    margin: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description=(
            "Relative improvement of the rule's metric (MAE by default) the challenger needs over the "
            "champion (0.01 = 1 % lower)."
        ),
    )
    require_beat_naive: bool = Field(
        default=False,
        description="Promote only a challenger whose metric (MAE by default) is also below naive's.",
    )
    promotion_rule: Literal["margin", "significance"] = Field(
        default="margin",
        description=(
            "margin: promote when the challenger's metric (MAE by default) is lower by the margin; "
            "significance: the margin rule AND a one-sided Diebold-Mariano test (HAC variance) of the "
            "metric's hourly losses with p < alpha. Both metrics' tests are recorded on every decision."
        ),
    )
    alpha: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description="Significance level of the Diebold-Mariano test under promotion_rule=significance.",
    )
    metric: Literal["mae", "interval_score"] = Field(
        default="mae",
        description=(
            "The score the rule (margin, significance) is applied to: mae (the point forecast's mean "
            "absolute error) or interval_score (the interval's Winkler score). Both are recorded on every "
            "decision either way."
        ),
    )
    min_month_share: float = Field(
        default=0.75,
        gt=0,
        le=1,
        description=(
            "Share of a month's hours that must have a scoreable forecast for a contest to be held; "
            "below it the month is recorded as 'no contest' and the challenger stays in shadow."
        ),
    )


class ReplaySettings(BaseModel):
    """Where a replay (``btcmlops simulate``) fits its models: here, one by one, or on other processes.

    A model's fit depends only on the candles through its month, never on a contest's outcome, so every
    fit of a replay can run at once; MLflow and the registry are still written by the one replaying
    process, in the same order, and the outputs are the same whichever executor fitted them.
    """

    executor: Literal["serial", "processes", "dask"] = Field(
        default="serial",
        description=(
            "serial: each model is fitted in the replaying process when its month closes. processes: "
            "every fit is submitted up front to a pool of local processes. dask: the same on Dask "
            "distributed, a local cluster unless `scheduler` names a running one."
        ),
    )
    workers: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Processes of the pool or of the local Dask cluster. Unset: this machine's cores divided by "
            "the threads of one fit (BTCMLOPS_MODEL__NUM_THREADS), so the fits never oversubscribe them."
        ),
    )
    scheduler: str | None = Field(
        default=None,
        description=(
            "Address of a running Dask scheduler (tcp://host:8786) for executor=dask; its workers must "
            "have this btcmlops installed. Unset: a local cluster of `workers` processes, closed after."
        ),
    )


class TrainerSettings(BaseModel):
    """The live trainer: how often it looks at the clock, and its lease (one trainer at a time)."""

    interval_s: float = Field(default=1.0, gt=0, description="Seconds between two looks at the clock.")
    lease_ttl_s: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Seconds a trainer's lease lasts unless renewed (it renews every third of it); a dead "
            "trainer's lease expires after this and the next trainer takes over and reconciles."
        ),
    )
    retry_max_s: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Longest wait before retrying after MLflow or the store failed (the feed's and init's too); "
            "only a configuration error (bad URL, missing driver, refused credentials) ends the feed or "
            "the trainer."
        ),
    )


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


class ClockSettings(BaseModel):
    """The shared sim clock of the live stack."""

    start: AwareDatetime = Field(
        default=datetime(2023, 12, 31, tzinfo=UTC),
        description=(
            "Sim time a reset starts from, and the feed's start when no clock exists yet (v1 is trained "
            "once sim time passes its first year)."
        ),
    )
    speed: float = Field(
        default=12.0, gt=0, allow_inf_nan=False, description="Sim hours per real second after a reset."
    )
    max_speed: float = Field(
        default=MAX_SPEED,
        gt=0,
        le=MAX_SPEED,
        description=(
            "Fastest speed a clock change may set, checked before anything is saved (the API answers 422 "
            "above it; never above 10000)."
        ),
    )
    wait_for_service: bool = Field(
        default=True,
        description=(
            "Hold the clock at a month's end until the inference service serves the champion that "
            "month's close decided (off: only until the trainer has closed it)."
        ),
    )
    paced: bool = Field(
        default=True,
        description=(
            "After a reset, also hold the clock until the forecast from each closed hour is made (the "
            "stack's hourly client asks it), so every hour has a live forecast at any speed; off: the clock "
            "runs on whether anyone asks or not."
        ),
    )

    @model_validator(mode="after")
    def _speed_within_max(self) -> Self:
        if self.speed > self.max_speed:
            raise ValueError(f"speed {self.speed:g} is above max_speed {self.max_speed:g}")
        return self


class S3Settings(BaseModel):
    """The S3 endpoint (MinIO in compose) behind the MLflow server's artifact proxy.

    Only ``btcmlops init`` uses it, to create the bucket; clients reach artifacts through the MLflow
    server and need no S3 credentials.
    """

    endpoint_url: str | None = Field(
        default=None,
        description=(
            "S3 endpoint, e.g. http://minio:9000; `btcmlops init` creates the bucket there. Unset: no "
            "bucket is created (on AWS, create it yourself)."
        ),
    )
    bucket: str = Field(default="mlflow", description="Bucket of the MLflow server's artifacts.")
    access_key_id: str | None = Field(default=None, description="S3 access key id `btcmlops init` uses.")
    secret_access_key: SecretStr | None = Field(
        default=None, description="S3 secret access key `btcmlops init` uses."
    )
    region: str = Field(default="us-east-1", description="S3 region `btcmlops init` uses.")


class ClientSettings(BaseModel):
    """The hourly client (`btcmlops client`): asks the service for the forecast from every hour."""

    api_url: str = Field(
        default="http://127.0.0.1:8000",
        description=(
            "Base URL of the inference service; its port must be BTCMLOPS_SERVE__PORT's (a client that "
            "asks nobody stalls the paced clock at the first hour)."
        ),
    )
    interval_s: float = Field(
        default=0.01,
        gt=0,
        description=(
            "Seconds between two looks at the clock: at 48 sim h/s an hour's forecast must be made within "
            "21 ms (one sim hour) of the hour's close to be live."
        ),
    )
    timeout_s: float = Field(default=10.0, gt=0, description="HTTP timeout of one call.")
    wait_s: float = Field(
        default=1.0,
        ge=0,
        le=30,
        description=(
            "Longest the client waits on the service for the next hour (GET /clock?after=, answered as "
            "soon as that hour may be asked and its candle is in memory) before it looks again; 0: no "
            "long wait, it looks every interval_s."
        ),
    )


class FeedSettings(BaseModel):
    """The feed (`btcmlops feed`): plays the candle file into the store as the hours close."""

    notify_url: str | None = Field(
        default=None,
        description=(
            "Base URL of the inference service the feed tells of each candle it writes (POST "
            "/clock/hour-closed with the control key, BTCMLOPS_SERVE__CONTROL_KEY), so the service reads it "
            "at once and the client's waiting ask is answered: the hour is pushed, not polled. Unset, or "
            "a notice lost: the service still reads new candles every poll interval and when asked."
        ),
    )


class DashboardSettings(BaseModel):
    """The Streamlit dashboard: it talks to the inference service's HTTP API only."""

    api_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Base URL of the inference service the dashboard reads (its port: BTCMLOPS_SERVE__PORT).",
    )
    mlflow_ui_url: str = Field(
        default="http://127.0.0.1:5000",
        description=(
            "MLflow UI address the dashboard links to; also where the replay's printed `mlflow ui` "
            "command serves (its port) and its links point, and what `make screenshot-mlflow` opens. "
            "In `make stack` it follows MLFLOW_PORT (stack.env)."
        ),
    )
    host: str = Field(default="127.0.0.1", description="Address `btcmlops dashboard` listens on.")
    port: int = Field(
        default=8501,
        ge=1,
        le=65535,
        description="Port `btcmlops dashboard` listens on (and `make screenshot` opens, with stack.env's).",
    )
    refresh_s: float = Field(default=2.0, gt=0, description="How often the live view redraws.")
    hours_shown: int = Field(default=168, ge=24, le=2000, description="Sim hours drawn on the chart.")
    request_timeout_s: float = Field(default=5.0, gt=0, description="HTTP timeout of one API call.")


class Settings(BaseSettings):
    """All of btcmlops' configuration; docs/settings.md lists every setting (``make settings-docs``)."""

    model_config = SettingsConfigDict(
        env_prefix="BTCMLOPS_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    home: Path = Field(
        default=Path(".btcmlops"),
        description=(
            "Directory of the embedded stores used where no URL is set (the SQLite price store, also of "
            "`data load` and `data fetch`; the MLflow store and artifacts), of the MLflow template cache "
            "and of the prediction log's write-ahead files."
        ),
    )
    store: StoreSettings = StoreSettings()
    mlflow: MlflowSettings = MlflowSettings()
    data: DataSettings = DataSettings()
    model: ModelSettings = ModelSettings()
    contest: ContestSettings = ContestSettings()
    replay: ReplaySettings = ReplaySettings()
    trainer: TrainerSettings = TrainerSettings()
    serve: ServeSettings = ServeSettings()
    clock: ClockSettings = ClockSettings()
    dashboard: DashboardSettings = DashboardSettings()
    client: ClientSettings = ClientSettings()
    feed: FeedSettings = FeedSettings()
    s3: S3Settings = S3Settings()
    metrics: MetricsSettings = MetricsSettings()
    demo: bool = Field(
        default=False,
        description=(
            "A laptop demo: the services accept the known demo and placeholder secrets (`demo`, "
            "`change-me...`). Off, they refuse to start with one."
        ),
    )
    heartbeat_file: Path | None = Field(
        default=None,
        description=(
            "File the feed and the trainer touch on every round, for a container healthcheck "
            "(`btcmlops health --heartbeat FILE`)."
        ),
    )

    _deprecations: list[str] = PrivateAttr(default_factory=list)

    @field_validator("home")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @model_validator(mode="wrap")
    @classmethod
    def _read_old_names(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        """The one place that reads settings by their old names (see :data:`RENAMED`, :data:`REMOVED`)."""
        notes: list[str] = []
        if isinstance(data, dict):
            data = _apply_old_names(data, notes)
        settings = handler(data)
        settings._deprecations = notes
        return settings

    @property
    def deprecations(self) -> list[str]:
        """One warning per old setting name that was set: what to set instead. The CLI prints them."""
        return list(self._deprecations)

    def placeholder_secrets(self) -> list[str]:
        """The settings that hold a placeholder or demo secret (copied from an example, never changed).

        Empty in demo mode: there the known values are the point.
        """
        if self.demo:
            return []
        found = []
        key = self.serve.control_key
        if key is not None and _placeholder(key.get_secret_value()):
            found.append("BTCMLOPS_SERVE__CONTROL_KEY")
        if self.store.url is not None:
            password = make_url(self.store.url).password
            if password is not None and _placeholder(str(password)):
                found.append("BTCMLOPS_STORE__URL (its password)")
        secret = self.s3.secret_access_key
        if secret is not None and _placeholder(secret.get_secret_value()):
            found.append("BTCMLOPS_S3__SECRET_ACCESS_KEY")
        return found


_PLACEHOLDERS = frozenset({"demo", "changeme", "change-me", "password", "secret", "admin"})


def _placeholder(value: str) -> bool:
    """A value from an example file or a tutorial, not a secret."""
    lowered = value.strip().lower()
    return lowered in _PLACEHOLDERS or lowered.startswith(("change-me", "changeme"))


RENAMED: dict[tuple[str, str], tuple[str, str]] = {
    ("clock", "api_key"): ("serve", "control_key"),
}
"""Old (group, name) -> new (group, name): still read, with a warning naming the new variable."""

REMOVED: dict[tuple[str, str], str] = {
    ("serve", "workers"): (
        "`btcmlops serve` runs one uvicorn process, whose champion snapshot, prediction log and clock live "
        "in that process's memory; run more processes or replicas to scale"
    ),
}
"""Settings that are no more, with why; set, they are ignored with a warning."""


def _variable(group: str, name: str) -> str:
    return f"BTCMLOPS_{group.upper()}__{name.upper()}"


def _apply_old_names(data: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """``data`` with every old name moved to its new one (unless that is set too) or dropped, noted."""
    data = dict(data)
    for (group, name), (new_group, new_name) in RENAMED.items():
        values = data.get(group)
        if not isinstance(values, dict) or name not in values:
            continue
        data[group] = {key: value for key, value in values.items() if key != name}
        old, new = _variable(group, name), _variable(new_group, new_name)
        target = data.get(new_group)
        target = dict(target) if isinstance(target, dict) else {}
        if new_name in target:
            notes.append(f"{old} is deprecated and ignored: {new} is set too; remove {old}")
            continue
        target[new_name] = values[name]
        data[new_group] = target
        notes.append(f"{old} is deprecated: set {new} instead (same value)")
    for (group, name), why in REMOVED.items():
        values = data.get(group)
        if isinstance(values, dict) and name in values:
            data[group] = {key: value for key, value in values.items() if key != name}
            notes.append(f"{_variable(group, name)} is no longer read and ignored: {why}")
    return data
