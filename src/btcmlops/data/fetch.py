"""Downloading Binance's public monthly kline archives, each checked against its SHA-256 file.

Binance publishes every month of 1h klines as ``{SYMBOL}-1h-{YYYY-MM}.zip`` next to a
``.zip.CHECKSUM`` file (``<sha256 hex>  <file name>``). Every month asked for is downloaded and
verified before any file is written, so a failed fetch leaves nothing half-done behind; parsing and
loading are the caller's (``read_candle_file``, ``load_files_into_store``).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx

from btcmlops.calendar import Month, months_between
from btcmlops.redaction import describe_error, redact

_CHECKSUM_LINE = re.compile(r"\s*([0-9a-fA-F]{64})\s+\*?(\S+)\s*")
_SYMBOL = re.compile(r"[A-Z0-9]{2,30}")
# Connection refused comes back at once; an unreachable host (dropped packets) waits this long at most,
# so an offline machine hears about it in seconds even with a generous read timeout.
_MAX_CONNECT_TIMEOUT_S = 5.0


class FetchError(RuntimeError):
    """An archive could not be downloaded or did not match its published checksum."""


def archive_url(base_url: str, symbol: str, month: Month) -> str:
    """Build the URL of one month of 1h klines in Binance's public data archive."""
    return f"{base_url.rstrip('/')}/data/spot/monthly/klines/{symbol}/1h/{symbol}-1h-{month}.zip"


def _get(client: httpx.Client, url: str, base_url: str, what: str) -> bytes:
    try:
        response = client.get(url)
    except httpx.TransportError as error:
        raise FetchError(
            f"cannot reach {redact(base_url)}: {describe_error(error)} — offline? "
            "set BTCMLOPS_DATA__ARCHIVE_BASE_URL to a reachable mirror"
        ) from None
    except httpx.HTTPError as error:
        raise FetchError(
            f"{what}: {error.__class__.__name__} from {redact(url)}: {redact(str(error))}"
        ) from None
    if response.status_code == httpx.codes.NOT_FOUND:
        raise FetchError(f"{what}: HTTP 404 from {redact(url)} — not published (yet)?")
    if response.status_code != httpx.codes.OK:
        raise FetchError(f"{what}: HTTP {response.status_code} from {url}")
    return response.content


def _expected_digest(checksum: bytes, url: str, name: str) -> str:
    """Read ``<sha256 hex>  <file name>``, refusing a file that is about another archive."""
    found = _CHECKSUM_LINE.fullmatch(checksum.decode("ascii", "replace"))
    if found is None:
        raise FetchError(f"{url}.CHECKSUM is not '<sha256>  <file name>': {checksum[:100]!r}")
    if found.group(2) != name:
        raise FetchError(f"{url}.CHECKSUM is for {found.group(2)}, not {name}")
    return found.group(1).lower()


def fetch_binance_monthly(
    symbol: str, start_month: str, end_month: str, *, base_url: str, timeout_s: float, dest_dir: Path
) -> list[Path]:
    """Download and verify each month's archive from ``start_month`` to ``end_month`` into ``dest_dir``.

    Args:
        symbol: Binance spot symbol, e.g. ``BTCUSDT`` (case does not matter).
        start_month: First month, ``YYYY-MM``.
        end_month: Last month, ``YYYY-MM``, not before ``start_month``.
        base_url: The archive's root, e.g. ``https://data.binance.vision`` or a mirror.
        timeout_s: HTTP timeout of each request, in seconds.
        dest_dir: Where the zips are written (created if missing).

    Returns:
        The written zip files, oldest month first.

    Raises:
        ValueError: A month or the symbol is malformed, or the months are out of order.
        FetchError: A download failed (network, HTTP status) or a checksum did not match; then no file
            has been written.
    """
    first, last = Month.parse(start_month), Month.parse(end_month)
    if last < first:
        raise ValueError(f"start month {first} is after end month {last}")
    symbol = symbol.upper()
    if not _SYMBOL.fullmatch(symbol):
        raise ValueError(f"not a Binance spot symbol: {symbol!r}")
    timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, _MAX_CONNECT_TIMEOUT_S))
    archives: list[tuple[str, bytes]] = []
    with httpx.Client(timeout=timeout, follow_redirects=True) as client:
        for month in months_between(first, last):
            url = archive_url(base_url, symbol, month)
            name = url.rsplit("/", 1)[1]
            archive = _get(client, url, base_url, f"{symbol} {month} archive")
            checksum = _get(client, f"{url}.CHECKSUM", base_url, f"{symbol} {month} checksum")
            expected = _expected_digest(checksum, url, name)
            actual = hashlib.sha256(archive).hexdigest()
            if actual != expected:
                raise FetchError(
                    f"{symbol} {month}: SHA-256 of {url} is {actual}, its CHECKSUM file says {expected}"
                )
            archives.append((name, archive))
    dest_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, archive in archives:
        path = dest_dir / name
        path.write_bytes(archive)
        paths.append(path)
    return paths
