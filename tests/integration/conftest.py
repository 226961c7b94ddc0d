"""Real services for the integration tests: moto's S3 server (MinIO's stand-in) and an mlflow server.

The mlflow server runs as its own process on a fresh MariaDB database, with artifacts behind its
artifact proxy in a bucket of the S3 server, as in docker compose: clients need no S3 credentials.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from services import free_port, mariadb_database, wait_until

S3_CREDENTIALS = {
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
    "region_name": "us-east-1",
}
BUCKET = "mlflow"


@dataclass(frozen=True)
class S3Endpoint:
    url: str
    bucket: str

    def client(self):  # type: ignore[no-untyped-def]
        return boto3.client("s3", endpoint_url=self.url, **S3_CREDENTIALS)

    def object_keys(self) -> list[str]:
        listed = self.client().list_objects_v2(Bucket=self.bucket)
        return [item["Key"] for item in listed.get("Contents", [])]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Endpoint]:
    """moto's S3 server in a thread on a free loopback port, with one bucket."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = S3Endpoint(f"http://127.0.0.1:{port}", BUCKET)
    endpoint.client().create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture(scope="session")
def mlflow_server(s3_endpoint: S3Endpoint, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` (one worker) on MariaDB and the S3 server; yields its URL."""
    databases = mariadb_database()
    backend = next(databases)
    port = free_port()
    log_path = tmp_path_factory.mktemp("mlflow-server") / "server.log"
    env = {
        **os.environ,
        "MLFLOW_S3_ENDPOINT_URL": s3_endpoint.url,
        "AWS_ACCESS_KEY_ID": S3_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": S3_CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": S3_CREDENTIALS["region_name"],
        # MLflow 3's GenAI job runners (five huey consumer processes) have no work here.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--backend-store-uri", backend,
        "--artifacts-destination", f"s3://{s3_endpoint.bucket}/mlartifacts",
        "--serve-artifacts",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)

        def healthy() -> bool:
            if process.poll() is not None:
                pytest.fail(
                    f"mlflow server exited with {process.returncode}:\n{log_path.read_text()[-3000:]}"
                )
            try:
                return httpx.get(f"{url}/health", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        try:
            wait_until(
                healthy, timeout_s=180, what="mlflow server", on_timeout=lambda: log_path.read_text()[-3000:]
            )
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            next(databases, None)  # drop the database
