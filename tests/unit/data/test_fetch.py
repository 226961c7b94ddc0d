"""``data fetch`` against a real local HTTP server serving archives the test builds.

The real archive (Binance's public data site) is on the internet, which tests cannot reach: this
server stands in for it through the archive base URL setting.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
import zipfile
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from btcmlops.data import FetchError, fetch_binance_monthly, load_files_into_store
from btcmlops.store import PriceStore
from factories import make_candles


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _publish(root: Path, month: str, *, corrupt_checksum: bool = False, checksum_name: str = "") -> int:
    """Write one month's zip and CHECKSUM file as Binance lays them out; return the candle count."""
    candles = make_candles(f"{month}-01", f"{month}-03 23:00")
    lines = [
        f"{int(r.open_time.timestamp()) * 1000},{r.open},{r.high},{r.low},{r.close},{r.volume},0,0,0,0,0,0"
        for r in candles.itertuples()
    ]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"BTCUSDT-1h-{month}.csv", "\n".join(lines) + "\n")
    folder = root / "data/spot/monthly/klines/BTCUSDT/1h"
    folder.mkdir(parents=True, exist_ok=True)
    name = f"BTCUSDT-1h-{month}.zip"
    (folder / name).write_bytes(buffer.getvalue())
    digest = "0" * 64 if corrupt_checksum else hashlib.sha256(buffer.getvalue()).hexdigest()
    (folder / f"{name}.CHECKSUM").write_text(f"{digest}  {checksum_name or name}\n")
    return len(candles)


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on a free port, serving ``root`` the way data.binance.vision lays it out."""
    root = tmp_path / "site"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    # A short poll interval: shutdown() waits up to one interval, at every test teardown.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def test_fetch_verifies_and_loads_every_month(archive: tuple[str, Path], tmp_path: Path) -> None:
    base_url, root = archive
    expected = _publish(root, "2024-01") + _publish(root, "2024-02")
    files = fetch_binance_monthly(
        "btcusdt", "2024-01", "2024-02", base_url=base_url, timeout_s=5, dest_dir=tmp_path / "dl"
    )
    assert files == [tmp_path / "dl" / "BTCUSDT-1h-2024-01.zip", tmp_path / "dl" / "BTCUSDT-1h-2024-02.zip"]
    site = root / "data/spot/monthly/klines/BTCUSDT/1h"
    assert all(f.read_bytes() == (site / f.name).read_bytes() for f in files)
    store = PriceStore(f"sqlite:///{tmp_path / 'p.db'}")
    store.migrate()
    report = load_files_into_store(files, store)
    assert report.upsert.inserted == expected == store.candle_count() == 144
    # 2024-01-04 .. 2024-01-31 are not in these small archives: reported, not refused
    assert [(g.start.isoformat(), g.missing_hours) for g in report.gaps] == [
        ("2024-01-04T00:00:00+00:00", 672)
    ]
    store.dispose()


def test_a_checksum_mismatch_is_refused(archive: tuple[str, Path], tmp_path: Path) -> None:
    base_url, root = archive
    _publish(root, "2024-01")
    _publish(root, "2024-02", corrupt_checksum=True)
    dest = tmp_path / "dl"
    with pytest.raises(
        FetchError, match=r"2024-02: SHA-256 of .* is [0-9a-f]{64}, its CHECKSUM file says 0{64}"
    ):
        fetch_binance_monthly("BTCUSDT", "2024-01", "2024-02", base_url=base_url, timeout_s=5, dest_dir=dest)
    assert not dest.exists()  # not even the good month: nothing for a caller to load by mistake


def test_a_checksum_of_another_file_is_refused(archive: tuple[str, Path], tmp_path: Path) -> None:
    base_url, root = archive
    _publish(root, "2024-01", checksum_name="BTCUSDT-1h-2023-12.zip")
    with pytest.raises(
        FetchError, match=r"CHECKSUM is for BTCUSDT-1h-2023-12\.zip, not BTCUSDT-1h-2024-01\.zip"
    ):
        fetch_binance_monthly(
            "BTCUSDT", "2024-01", "2024-01", base_url=base_url, timeout_s=5, dest_dir=tmp_path
        )


def test_a_missing_month_names_the_month(archive: tuple[str, Path], tmp_path: Path) -> None:
    base_url, _ = archive
    with pytest.raises(
        FetchError,
        match=rf"BTCUSDT 2031-05 archive: HTTP 404 from {base_url}/data/spot/monthly/klines/BTCUSDT/1h/"
        r"BTCUSDT-1h-2031-05\.zip",
    ):
        fetch_binance_monthly(
            "BTCUSDT", "2031-05", "2031-05", base_url=base_url, timeout_s=5, dest_dir=tmp_path
        )


def test_offline_fails_fast_with_a_clear_message(tmp_path: Path) -> None:
    closed = ThreadingHTTPServer(("127.0.0.1", 0), _QuietHandler)
    port = closed.server_address[1]
    closed.server_close()  # nothing listens on this port now
    started = time.perf_counter()
    with pytest.raises(FetchError, match=r"cannot reach http://127\.0\.0\.1:\d+: .* offline\?"):
        fetch_binance_monthly(
            "BTCUSDT",
            "2024-01",
            "2024-01",
            base_url=f"http://127.0.0.1:{port}",
            timeout_s=10,
            dest_dir=tmp_path,
        )
    assert time.perf_counter() - started < 3


@pytest.mark.parametrize(
    ("symbol", "start", "end", "message"),
    [
        ("BTCUSDT", "2024-03", "2024-01", "start month 2024-03 is after end month 2024-01"),
        ("BTCUSDT", "2024-13", "2024-12", r"not a month \(expected YYYY-MM\): .2024-13."),
        ("BTCUSDT", "March", "2024-12", "not a month"),
        ("BTC/USDT", "2024-01", "2024-01", "not a Binance spot symbol"),
    ],
    ids=["order", "month-13", "not-a-month", "symbol"],
)
def test_arguments_are_checked_before_any_request(
    tmp_path: Path, symbol: str, start: str, end: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):  # the base URL is never contacted: nothing listens there
        fetch_binance_monthly(
            symbol, start, end, base_url="http://127.0.0.1:9", timeout_s=1, dest_dir=tmp_path
        )
