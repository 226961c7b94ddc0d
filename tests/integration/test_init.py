"""``btcmlops init`` (compose's one-shot service) against MariaDB and moto's S3 server, in-process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, inspect
from typer.testing import CliRunner

from btcmlops.cli import app

if TYPE_CHECKING:
    from tests.integration.conftest import S3Endpoint

pytestmark = pytest.mark.integration


def _env(store_url: str, s3: S3Endpoint, bucket: str) -> dict[str, str]:
    return {
        "BTCMLOPS_STORE__URL": store_url,
        "BTCMLOPS_S3__ENDPOINT_URL": s3.url,
        "BTCMLOPS_S3__BUCKET": bucket,
        "BTCMLOPS_S3__ACCESS_KEY_ID": s3.access_key_id,
        "BTCMLOPS_S3__SECRET_ACCESS_KEY": s3.secret_access_key,
    }


def _tables(store_url: str) -> set[str]:
    engine = create_engine(store_url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_init_creates_the_bucket_and_the_tables_and_may_run_again(
    s3_endpoint: S3Endpoint, mariadb_url_factory: Callable[[], str]
) -> None:
    store_url = mariadb_url_factory()
    env = _env(store_url, s3_endpoint, "init-test")
    runner = CliRunner()

    first = runner.invoke(app, ["init"], env=env)
    again = runner.invoke(app, ["init"], env=env)

    assert first.exit_code == 0, first.output
    assert "bucket init-test: created" in first.output
    assert "17,5" in first.output  # the shipped 2023-2024 file: 17,5xx candles, checked whole
    assert again.exit_code == 0, again.output
    assert "bucket init-test: already there" in again.output
    buckets = [bucket["Name"] for bucket in s3_endpoint.client().list_buckets()["Buckets"]]
    assert "init-test" in buckets
    assert {"candles", "contest_decisions", "prediction_log", "sim_clock"} <= _tables(store_url)


def test_init_with_a_broken_file_names_the_line_and_prepares_nothing(
    s3_endpoint: S3Endpoint, mariadb_url_factory: Callable[[], str], tmp_path: Path
) -> None:
    store_url = mariadb_url_factory()
    broken = tmp_path / "candles.csv"
    broken.write_text(
        "open_time,open,high,low,close,volume\n"
        "2024-01-01T00:00:00Z,1,2,0.5,1.5,10\n"
        "2024-01-01T01:00:00Z,1,2,0.5,oops,10\n"
    )
    result = CliRunner().invoke(
        app, ["init", "--data", str(broken)], env=_env(store_url, s3_endpoint, "never-made")
    )

    assert result.exit_code == 1
    assert "candles.csv:3: field 'close': 'oops' is not a number" in result.output
    assert _tables(store_url) == set()
    buckets = [bucket["Name"] for bucket in s3_endpoint.client().list_buckets()["Buckets"]]
    assert "never-made" not in buckets
