"""Real services for the integration tests: MariaDB databases, moto's S3 server, an mlflow server.

They stand in for docker compose's MySQL, MinIO and mlflow: the mlflow server runs as its own process
on a fresh MariaDB database, with artifacts behind its artifact proxy in a bucket of the S3 server, so
clients (the code under test) need no S3 credentials. S3 credentials go to the server's process and to
the tests' own boto3 clients only, never into this process's environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from services import free_port, mariadb_database, stop_process_group, wait_for_http

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

S3_ACCESS_KEY = S3_SECRET_KEY = "testing"
S3_REGION = "us-east-1"
BUCKET = "mlflow"
ARTIFACTS_PREFIX = "mlartifacts"
SERVER_START_TIMEOUT_S = 180
"""The first start creates MLflow's schema on MariaDB; on a busy two-core machine that takes ~30 s."""
SERVER_STOP_TIMEOUT_S = 30
LOG_TAIL_CHARS = 4000


@dataclass(frozen=True)
class S3Endpoint:
    """moto's S3 server and the bucket the mlflow server keeps its artifacts in."""

    url: str
    bucket: str
    access_key_id: str = S3_ACCESS_KEY
    secret_access_key: str = S3_SECRET_KEY

    def client(self) -> S3Client:
        """A boto3 client with explicit fake credentials (nothing read from the environment)."""
        import boto3  # here, not at the top: pytest-xdist's controller loads this file and runs no test

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=S3_ACCESS_KEY,
            aws_secret_access_key=S3_SECRET_KEY,
            region_name=S3_REGION,
        )

    def object_keys(self, prefix: str = "") -> list[str]:
        """Every key in the bucket under ``prefix``."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


@pytest.fixture(scope="session")
def mariadb_url_factory() -> Iterator[Callable[[], str]]:
    """Make uniquely named databases on the MariaDB server; all are dropped at the end of the session.

    Calling the factory skips the test (fails it when ``CI`` is "true") if the server is unreachable.
    """
    with ExitStack() as cleanup:

        def make() -> str:
            databases = mariadb_database()
            url = next(databases)
            cleanup.callback(next, databases, None)  # resuming the generator drops the database
            return url

        yield make


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    """moto's S3 server (``moto_server``) as its own process on a free loopback port, with one bucket.

    A process, not a thread of this one: in a thread it answered the mlflow server only when the test's
    own threads (clients under load, proxies) let go of this interpreter, so a model load through the
    mlflow server took as long as the test was busy."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("s3") / "moto_server.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(
            f"{url}/moto-api/data.json",
            process,
            what="moto_server",
            timeout_s=60,
            log_tail=lambda: log_path.read_text(errors="replace")[-3000:],
        )
        endpoint = S3Endpoint(url, BUCKET)
        endpoint.client().create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        stop_process_group(process, timeout_s=10)


@pytest.fixture(scope="session")
def s3_keys(s3_endpoint: S3Endpoint) -> Callable[[str], list[str]]:
    """List, with boto3 against the S3 server, the keys under a path of the mlflow server's artifacts.

    Paths and keys are relative to ``--artifacts-destination``, the way ``mlflow-artifacts:`` URIs are.
    """

    def keys(path: str) -> list[str]:
        root = f"{ARTIFACTS_PREFIX}/"
        return [key.removeprefix(root) for key in s3_endpoint.object_keys(f"{root}{path.strip('/')}")]

    return keys


class MlflowServerProcess:
    """A real ``mlflow server`` (uvicorn, one worker) on MariaDB and the S3 server, stoppable and
    restartable on the same port and database (to test what clients do while it is down)."""

    def __init__(self, backend: str, s3: S3Endpoint, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log_path = log_dir / "server.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._env = {
            **os.environ,
            "MLFLOW_S3_ENDPOINT_URL": s3.url,
            "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
            "AWS_DEFAULT_REGION": S3_REGION,
            # The job runner (huey consumers, for GenAI jobs btcmlops never submits) outlives a terminated
            # server by seconds, holds connections to the database we drop, and leaves a folder in /dev/shm.
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
        self._command = [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--backend-store-uri", backend,
            "--artifacts-destination", f"s3://{s3.bucket}/{ARTIFACTS_PREFIX}",
            "--serve-artifacts",
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--workers", "1",
        ]  # fmt: skip

    def log_tail(self) -> str:
        return self._log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]

    def start(self) -> None:
        with self._log_path.open("ab") as log:
            # Its own session: the CLI starts uvicorn as a child, and stop() ends the whole group.
            self._process = subprocess.Popen(
                self._command, env=self._env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for_http(
            f"{self.url}/health",
            self._process,
            what="mlflow server",
            timeout_s=SERVER_START_TIMEOUT_S,
            log_tail=self.log_tail,
        )

    def stop(self) -> None:
        if self._process is not None:
            stop_process_group(self._process, SERVER_STOP_TIMEOUT_S)
            self._process = None


@pytest.fixture(scope="session")
def mlflow_server(
    s3_endpoint: S3Endpoint,
    mariadb_url_factory: Callable[[], str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """A real ``mlflow server`` shared by the session's tests; yields its URL."""
    server = MlflowServerProcess(mariadb_url_factory(), s3_endpoint, tmp_path_factory.mktemp("mlflow-server"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def own_mlflow_server(
    s3_endpoint: S3Endpoint,
    mariadb_url_factory: Callable[[], str],
    tmp_path: Path,
) -> Iterator[MlflowServerProcess]:
    """An mlflow server this test alone may stop and start again."""
    server = MlflowServerProcess(mariadb_url_factory(), s3_endpoint, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _no_global_mlflow_state() -> Iterator[None]:
    """The product reaches MLflow through explicit clients: no test may leave an active run or a URI."""
    import mlflow  # here, not at the top: pytest-xdist's controller loads this file and runs no test

    before = mlflow.get_tracking_uri()
    yield
    assert mlflow.active_run() is None, "a test left an MLflow run active"
    assert mlflow.get_tracking_uri() == before, "a test changed MLflow's global tracking URI"
