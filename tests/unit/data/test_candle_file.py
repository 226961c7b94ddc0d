"""Candle files: three formats, detection, the shipped file, and every kind of bad row."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from btcmlops.data import CandleFileError, CandleFormat, read_candle_file
from btcmlops.settings import EMBEDDED_DATA_FILE
from factories import make_candles, write_project_csv

CANDLES = make_candles("2024-01-01", "2024-01-02 23:00")


def _binance_lines(frame: pd.DataFrame, unit: int) -> str:
    lines = []
    for row in frame.itertuples():
        start = int(row.open_time.timestamp()) * unit
        end = start + 3600 * unit - 1
        lines.append(
            f"{start},{row.open:.2f},{row.high:.2f},{row.low:.2f},{row.close:.2f},{row.volume:.5f},"
            f"{end},123.4,42,1.5,2.5,0"
        )
    return "\n".join(lines) + "\n"


def _cdd_text(frame: pd.DataFrame, unix_unit: int = 1000) -> str:
    lines = [
        "https://www.CryptoDataDownload.com",
        "Unix,Date,Symbol,Open,High,Low,Close,Volume BTC,Volume USDT,tradecount",
    ]
    for row in frame.iloc[::-1].itertuples():  # newest first, as CryptoDataDownload writes
        lines.append(
            f"{int(row.open_time.timestamp()) * unix_unit},{row.open_time:%Y-%m-%d %H:%M:%S},BTC/USDT,"
            f"{row.open:.2f},{row.high:.2f},{row.low:.2f},{row.close:.2f},"
            f"{row.volume:.5f},{row.volume * row.close:.2f},7"
        )
    return "\n".join(lines) + "\n"


def _assert_same_candles(read: pd.DataFrame, expected: pd.DataFrame, decimals: int = 2) -> None:
    assert list(read["open_time"]) == list(expected["open_time"])
    for column in ("open", "high", "low", "close"):
        np.testing.assert_allclose(read[column], expected[column], rtol=0, atol=10**-decimals)


def test_the_shipped_file(tmp_path: Path) -> None:
    loaded = read_candle_file(EMBEDDED_DATA_FILE)
    assert loaded.format is CandleFormat.PROJECT
    candles = loaded.candles
    assert len(candles) == 17_543
    assert candles["open_time"].iloc[0] == pd.Timestamp("2023-01-01T00:00Z")
    assert candles["open_time"].iloc[-1] == pd.Timestamp("2024-12-31T23:00Z")
    closes = candles.set_index("open_time")["close"]
    assert closes[pd.Timestamp("2023-12-31T23:00Z")] == 42283.58
    assert closes[pd.Timestamp("2024-12-31T23:00Z")] == 93576.0
    assert [(g.start, g.missing_hours) for g in loaded.gaps] == [(pd.Timestamp("2023-03-24T13:00Z"), 1)]
    assert str(candles["open_time"].dtype) == "datetime64[ns, UTC]"


def test_project_csv_plain_and_gzip(tmp_path: Path) -> None:
    plain = tmp_path / "c.csv"
    write_project_csv(CANDLES, str(plain))
    packed = tmp_path / "c.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (plain, packed):
        loaded = read_candle_file(path)
        assert loaded.format is CandleFormat.PROJECT
        _assert_same_candles(loaded.candles, CANDLES, decimals=5)


@pytest.mark.parametrize("unit", [1_000, 1_000_000], ids=["milliseconds", "microseconds-2025"])
def test_binance_kline_csv(tmp_path: Path, unit: int) -> None:
    path = tmp_path / "BTCUSDT-1h-2024-01.csv"
    path.write_text(_binance_lines(CANDLES, unit))
    loaded = read_candle_file(path)
    assert loaded.format is CandleFormat.BINANCE
    _assert_same_candles(loaded.candles, CANDLES)


def test_binance_zip_as_published(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("BTCUSDT-1h-2024-01.csv", _binance_lines(CANDLES, 1_000))
    path = tmp_path / "BTCUSDT-1h-2024-01.zip"
    path.write_bytes(buffer.getvalue())
    _assert_same_candles(read_candle_file(path).candles, CANDLES)


@pytest.mark.parametrize("unix_unit", [1, 1_000], ids=["seconds", "milliseconds"])
def test_cryptodatadownload_newest_first(tmp_path: Path, unix_unit: int) -> None:
    path = tmp_path / "Binance_BTCUSDT_1h.csv"
    path.write_text(_cdd_text(CANDLES, unix_unit))
    loaded = read_candle_file(path)
    assert loaded.format is CandleFormat.CRYPTODATADOWNLOAD
    _assert_same_candles(loaded.candles, CANDLES)  # sorted oldest first
    np.testing.assert_allclose(loaded.candles["volume"], CANDLES["volume"], atol=1e-5)  # base, not quote


def test_format_can_be_forced_and_unknown_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    path.write_text("time;price\n2024-01-01;1\n")
    with pytest.raises(CandleFileError, match=r"odd\.csv:1: field 'header': unknown candle format"):
        read_candle_file(path)
    with pytest.raises(CandleFileError):
        read_candle_file(path, CandleFormat.BINANCE)


def test_gaps_are_reported_not_refused(tmp_path: Path) -> None:
    path = tmp_path / "gappy.csv"
    write_project_csv(
        make_candles("2024-01-01", "2024-01-02", drop=("2024-01-01 05:00", "2024-01-01 06:00")), str(path)
    )
    (gap,) = read_candle_file(path).gaps
    assert (gap.start, gap.end, gap.missing_hours) == (
        pd.Timestamp("2024-01-01T05:00Z"),
        pd.Timestamp("2024-01-01T06:00Z"),
        2,
    )


HEADER = "open_time,open,high,low,close,volume"
GOOD = "2024-01-01T00:00:00Z,100,110,90,105,1.5"


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ("2024-01-01T01:00:00Z,100,1x0,90,105,1", "high", "'1x0' is not a number"),
        ("2024-01-01T01:00:00Z,100,110,90,nan,1", "close", "not a finite number"),
        ("2024-01-01T01:00:00Z,-1,110,90,105,1", "open", "price -1.0 is not positive"),
        ("2024-01-01T01:00:00Z,100,104,90,105,1", "high", "104.0 is below max(open, close) = 105.0"),
        ("2024-01-01T01:00:00Z,100,110,101,105,1", "low", "101.0 is above min(open, close) = 100.0"),
        ("2024-01-01T01:00:00Z,100,110,90,105,-2", "volume", "volume -2.0 is negative"),
        ("2024-01-01T01:30:00Z,100,110,90,105,1", "open_time", "is not on the hour"),
        ("yesterday,100,110,90,105,1", "open_time", "'yesterday' is not a timestamp"),
        (
            "2024-01-01T00:00:00Z,100,110,90,105,1",
            "open_time",
            "duplicate timestamp 2024-01-01T00:00:00+00:00 (also line 2)",
        ),
        ("2024-01-01T01:00:00Z,100,110,90", "close", "missing"),
    ],
    ids=[
        "malformed",
        "nan",
        "non-positive",
        "high-below",
        "low-above",
        "negative-volume",
        "off-hour",
        "bad-time",
        "duplicate",
        "short-row",
    ],
)
def test_a_bad_row_is_refused_with_file_line_and_field(
    tmp_path: Path, row: str, field: str, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(f"{HEADER}\n{GOOD}\n{row}\n2024-01-01T02:00:00Z,100,110,90,105,1\n")
    with pytest.raises(CandleFileError) as caught:
        read_candle_file(path)
    errors = caught.value.errors
    assert {(e.path, e.line) for e in errors} == {(path, 3)}  # only the bad line, nothing else
    error = errors[0]
    assert error.field == field
    assert message in error.message
    assert f"bad.csv:3: field '{field}'" in str(caught.value)


def test_every_bad_row_is_listed(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        f"{HEADER}\n{GOOD}\n2024-01-01T01:00:00Z,x,110,90,105,1\n\n2024-01-01T02:00:00Z,100,110,90,105,y\n"
    )
    with pytest.raises(CandleFileError) as caught:
        read_candle_file(path)
    assert [(e.line, e.field) for e in caught.value.errors] == [(3, "open"), (5, "volume")]
