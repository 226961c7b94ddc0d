"""``prepare_stack``: the one-shot setup before the live services start (compose's ``init``).

It creates the artifact bucket, migrates the price store and validates the candle file the feed will
play, so a broken file or an unreachable database stops the stack at once with a clear message
instead of in the middle of a demo. Every step may run again: nothing is done twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import ClientError

from btcmlops.data import read_candle_file
from btcmlops.settings import S3Settings
from btcmlops.store import PriceStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class SetupReport:
    bucket: str | None
    bucket_created: bool
    candles_in_file: int
    data_file: Path


def ensure_bucket(s3: S3Settings) -> bool:
    """Create ``s3.bucket`` unless it exists; return whether it was created."""
    client: S3Client = boto3.client(
        "s3",
        endpoint_url=s3.endpoint_url,
        aws_access_key_id=s3.access_key_id,
        aws_secret_access_key=s3.secret_access_key.get_secret_value() if s3.secret_access_key else None,
        region_name=s3.region,
    )
    try:
        client.head_bucket(Bucket=s3.bucket)
        return False
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            raise
    client.create_bucket(Bucket=s3.bucket)
    return True


def prepare_stack(store: PriceStore, s3: S3Settings, data_file: Path) -> SetupReport:
    """Validate the candle file, migrate the store, create the bucket (when an endpoint is set)."""
    candles = read_candle_file(data_file).candles  # raises CandleFileError naming file, line and field
    store.migrate()
    created = ensure_bucket(s3) if s3.endpoint_url else False
    return SetupReport(s3.bucket if s3.endpoint_url else None, created, len(candles), data_file)
