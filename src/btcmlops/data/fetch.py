"""Downloading Binance's public monthly kline archives, each checked against its SHA-256 file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx

from btcmlops.calendar import Month, months_between


class FetchError(RuntimeError):
    """An archive could not be downloaded or did not match its published checksum."""


def archive_url(base_url: str, symbol: str, month: Month) -> str:
    """URL of one month of 1h klines in Binance's public data archive."""
    name = f"{symbol}-1h-{month}.zip"
    return f"{base_url.rstrip('/')}/data/spot/monthly/klines/{symbol}/1h/{name}"


def _get(client: httpx.Client, url: str, base_url: str, what: str) -> bytes:
    try:
        response = client.get(url)
    except httpx.TransportError as error:
        raise FetchError(
            f"cannot reach {base_url}: {error.__class__.__name__}: {error} — offline? "
            "set BTCMLOPS_DATA__ARCHIVE_BASE_URL to a reachable mirror"
        ) from None
    if response.status_code != 200:
        raise FetchError(f"{what}: HTTP {response.status_code} from {url}")
    return response.content


def fetch_binance_monthly(
    symbol: str, start: str, end: str, *, base_url: str, timeout_s: float, dest_dir: Path
) -> list[Path]:
    """Download each month from ``start`` to ``end`` (``YYYY-MM``) into ``dest_dir``, verified.

    Nothing is loaded here: the caller validates every file before storing any (all or nothing).
    """
    first, last = Month.parse(start), Month.parse(end)
    if last < first:
        raise ValueError(f"--start {start} is after --end {end}")
    symbol = symbol.upper()
    dest_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    with httpx.Client(timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0))) as client:
        for month in months_between(first, last):
            url = archive_url(base_url, symbol, month)
            archive = _get(client, url, base_url, f"{symbol} {month} archive")
            checksum = _get(client, f"{url}.CHECKSUM", base_url, f"{symbol} {month} checksum")
            expected = checksum.decode("ascii", "replace").split()[0].lower() if checksum.strip() else ""
            actual = hashlib.sha256(archive).hexdigest()
            if actual != expected:
                raise FetchError(
                    f"{symbol} {month}: SHA-256 of {url} is {actual}, "
                    f"its CHECKSUM file says {expected or 'nothing'}"
                )
            path = dest_dir / url.rsplit("/", 1)[1]
            path.write_bytes(archive)
            paths.append(path)
    return paths
