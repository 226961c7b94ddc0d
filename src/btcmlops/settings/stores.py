"""Where things are kept: the price store, MLflow, and the S3 store of model files."""

from __future__ import annotations

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
)


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
