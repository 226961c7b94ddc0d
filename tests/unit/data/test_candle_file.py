"""Candle files: three formats, detection by content, the shipped file, and every kind of bad row."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from btcmlops.data import CANDLE_COLUMNS, CandleFileError, CandleFormat, Gap, read_candle_file
from btcmlops.settings import EMBEDDED_DATA_FILE
from factories import make_candles, write_project_csv

CANDLES = make_candles("2024-01-01", "2024-01-02 23:00")
CDD_HEADER = "Unix,Date,Symbol,Open,High,Low,Close,Volume BTC,Volume USDT,tradecount"


def _binance_lines(frame: pd.DataFrame, unit: int) -> list[str]:
    lines = []
    for row in frame.itertuples():
        start = int(row.open_time.timestamp()) * unit
        end = start + 3600 * unit - 1
        lines.append(
            f"{start},{row.open:.2f},{row.high:.2f},{row.low:.2f},{row.close:.2f},{row.volume:.5f},"
            f"{end},123.4,42,1.5,2.5,0"
        )
    return lines


def _cdd_lines(frame: pd.DataFrame, unix_unit: int = 1000, header: str = CDD_HEADER) -> list[str]:
    lines = ["https://www.CryptoDataDownload.com", header]
    for row in frame.iloc[::-1].itertuples():  # newest first, as CryptoDataDownload writes
        lines.append(
            f"{int(row.open_time.timestamp()) * unix_unit},{row.open_time:%Y-%m-%d %H:%M:%S},BTC/USDT,"
            f"{row.open:.2f},{row.high:.2f},{row.low:.2f},{row.close:.2f},"
            f"{row.volume:.5f},{row.volume * row.close:.2f},7"
        )
    return lines


def _write(path: Path, lines: list[str], *, gz: bool = False) -> Path:
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def _assert_same_candles(read: pd.DataFrame, expected: pd.DataFrame, decimals: int = 2) -> None:
    assert tuple(read.columns) == CANDLE_COLUMNS
    assert str(read["open_time"].dtype) == "datetime64[ns, UTC]"
    assert all(str(read[column].dtype) == "float64" for column in CANDLE_COLUMNS[1:])
    assert list(read["open_time"]) == list(expected["open_time"])
    for column in ("open", "high", "low", "close"):  # the files below are written with this many decimals
        np.testing.assert_allclose(read[column], expected[column], rtol=0, atol=0.5 * 10**-decimals + 1e-9)
    np.testing.assert_allclose(read["volume"], expected["volume"], rtol=0, atol=0.5e-5 + 1e-9)


def test_the_shipped_file() -> None:
    loaded = read_candle_file(EMBEDDED_DATA_FILE)
    assert loaded.format is CandleFormat.PROJECT
    candles = loaded.candles
    assert tuple(candles.columns) == CANDLE_COLUMNS
    assert str(candles["open_time"].dtype) == "datetime64[ns, UTC]"
    assert len(candles) == 17_543
    assert candles["open_time"].is_monotonic_increasing
    assert candles["open_time"].is_unique
    first, last = candles.iloc[0], candles.iloc[-1]
    assert tuple(first) == (
        pd.Timestamp("2023-01-01T00:00Z"),
        16541.77,
        16545.7,
        16508.39,
        16529.67,
        4364.8357,
    )
    assert tuple(last) == (pd.Timestamp("2024-12-31T23:00Z"), 93488.83, 93756.0, 93375.38, 93576.0, 336.57995)
    closes = candles.set_index("open_time")["close"]
    assert closes[pd.Timestamp("2023-12-31T23:00Z")] == 42283.58
    assert loaded.gaps == [Gap(pd.Timestamp("2023-03-24T13:00Z"), pd.Timestamp("2023-03-24T13:00Z"), 1)]
    halt = candles.set_index("open_time").loc[pd.Timestamp("2023-03-24T12:00Z")]
    assert tuple(halt) == (28080.0, 28080.0, 28080.0, 28080.0, 0.0)  # kept as the source gives it


def test_project_csv_plain_and_gzip(tmp_path: Path) -> None:
    plain = tmp_path / "c.csv"
    write_project_csv(CANDLES, str(plain))
    packed = tmp_path / "c.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (plain, packed):
        loaded = read_candle_file(path)
        assert loaded.format is CandleFormat.PROJECT
        assert loaded.gaps == []
        _assert_same_candles(loaded.candles, CANDLES, decimals=6)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("unit", [1_000, 1_000_000], ids=["milliseconds", "microseconds-2025"])
def test_binance_kline_csv(tmp_path: Path, unit: int, gz: bool) -> None:
    path = _write(tmp_path / "BTCUSDT-1h-2024-01.csv", _binance_lines(CANDLES, unit), gz=gz)
    loaded = read_candle_file(path)
    assert loaded.format is CandleFormat.BINANCE
    _assert_same_candles(loaded.candles, CANDLES, decimals=2)


def test_binance_zip_as_published(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("BTCUSDT-1h-2024-01.csv", "\n".join(_binance_lines(CANDLES, 1_000)) + "\n")
    path = tmp_path / "BTCUSDT-1h-2024-01.zip"
    path.write_bytes(buffer.getvalue())
    loaded = read_candle_file(path)
    assert loaded.format is CandleFormat.BINANCE
    _assert_same_candles(loaded.candles, CANDLES)


def test_binance_with_a_header_line(tmp_path: Path) -> None:
    header = (
        "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
        "taker_buy_volume,taker_buy_quote_volume,ignore"
    )
    lines = _binance_lines(CANDLES, 1_000)
    cells = lines[5].split(",")
    lines[5] = ",".join([*cells[:4], "-1", *cells[5:]])  # the close on physical line 7, after the header
    path = _write(tmp_path / "k.csv", [header, *lines])
    with pytest.raises(CandleFileError) as caught:
        read_candle_file(path)
    assert [(e.line, e.field) for e in caught.value.errors] == [(7, "close"), (7, "low")]
    lines[5] = _binance_lines(CANDLES, 1_000)[5]
    _assert_same_candles(read_candle_file(_write(path, [header, *lines])).candles, CANDLES)


def test_binance_units_do_not_mix_within_a_file(tmp_path: Path) -> None:
    lines = _binance_lines(CANDLES.iloc[:3], 1_000) + _binance_lines(CANDLES.iloc[3:5], 1_000_000)
    path = _write(tmp_path / "mixed.csv", lines)
    with pytest.raises(CandleFileError) as caught:
        read_candle_file(path)
    assert [(e.line, e.field) for e in caught.value.errors] == [(4, "open_time"), (5, "open_time")]
    assert "in microseconds, the file's first row in milliseconds" in caught.value.errors[0].message
    seconds = _write(tmp_path / "seconds.csv", _binance_lines(CANDLES.iloc[:2], 1))
    with pytest.raises(CandleFileError, match="the magnitude says seconds"):
        read_candle_file(seconds, CandleFormat.BINANCE)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("unix_unit", [1, 1_000], ids=["seconds", "milliseconds"])
def test_cryptodatadownload_newest_first(tmp_path: Path, unix_unit: int, gz: bool) -> None:
    path = _write(tmp_path / "Binance_BTCUSDT_1h.csv", _cdd_lines(CANDLES, unix_unit), gz=gz)
    loaded = read_candle_file(path)
    assert loaded.format is CandleFormat.CRYPTODATADOWNLOAD
    _assert_same_candles(loaded.candles, CANDLES, decimals=2)  # sorted oldest first; volume in BTC


def test_cryptodatadownload_header_variants(tmp_path: Path) -> None:
    header = "unix timestamp,date,symbol,open,high,low,close,volume usdt,volume btc,tradecount"
    lines = _cdd_lines(CANDLES, header=header)
    # quote volume first this time, and the symbol without a slash: still the BTC column is chosen
    lines[2:] = [
        ",".join([*cells[:2], "BTCUSDT", *cells[3:7], cells[8], cells[7], cells[9]])
        for cells in (line.split(",") for line in lines[2:])
    ]
    _assert_same_candles(read_candle_file(_write(tmp_path / "c.csv", lines)).candles, CANDLES)
    lines[2:] = [line.replace("BTCUSDT", "") for line in lines[2:]]
    with pytest.raises(CandleFileError, match=r"c\.csv:2: field 'header': cannot tell the base-asset volume"):
        read_candle_file(_write(tmp_path / "c.csv", lines))


def test_cryptodatadownload_errors_use_the_files_line_and_column_names(tmp_path: Path) -> None:
    lines = _cdd_lines(CANDLES)
    cells = lines[4].split(",")
    cells[7] = "-3"  # Volume BTC of the third-newest row
    lines[4] = ",".join(cells)
    with pytest.raises(CandleFileError) as caught:
        read_candle_file(_write(tmp_path / "cdd.csv", lines))
    assert [(e.line, e.field) for e in caught.value.errors] == [(5, "Volume BTC")]


@pytest.mark.parametrize(
    ("lines", "fmt"),
    [
        (
            ["open_time,open,high,low,close,volume", "2024-01-01T00:00:00Z,1,2,0.5,1.5,3"],
            CandleFormat.PROJECT,
        ),
        (_binance_lines(CANDLES.iloc[:2], 1_000), CandleFormat.BINANCE),
        (_cdd_lines(CANDLES.iloc[:2]), CandleFormat.CRYPTODATADOWNLOAD),
    ],
    ids=["project", "binance", "cryptodatadownload"],
)
def test_the_format_is_detected_by_content_not_by_name(
    tmp_path: Path, lines: list[str], fmt: CandleFormat
) -> None:
    misleading = _write(tmp_path / "prices.zip", lines, gz=True)  # gzip, whatever the name says
    assert read_candle_file(misleading).format is fmt


def test_a_forced_format_is_used(tmp_path: Path) -> None:
    path = _write(tmp_path / "k.csv", _binance_lines(CANDLES.iloc[:2], 1_000))
    with pytest.raises(CandleFileError, match=r"k\.csv:1: field 'header': expected open_time,open"):
        read_candle_file(path, CandleFormat.PROJECT)
    assert read_candle_file(path, CandleFormat.BINANCE).format is CandleFormat.BINANCE


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"time;price\n2024-01-01;1\n", r"x\.dat:1: field 'header': unknown candle format"),
        (b"", r"x\.dat: field 'file': the file is empty"),
        (b"\n\n", r"x\.dat: field 'file': the file is empty"),
        (gzip.compress(b"time;price\n")[:12], r"x\.dat: field 'file': cannot decompress"),
        (b"\xff\xfe\x00garbage", r"x\.dat: field 'file': not UTF-8 text"),
        (b"open_time,open,high,low,close,volume\n", r"x\.dat:1: field 'file': no candles after the header"),
    ],
    ids=["unknown", "empty", "blank", "broken-gzip", "binary", "header-only"],
)
def test_an_unreadable_file_is_refused_clearly(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.dat"
    path.write_bytes(content)
    with pytest.raises(CandleFileError, match=message):
        read_candle_file(path)


def test_a_zip_must_hold_exactly_one_file(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.csv", "x\n")
        archive.writestr("b.csv", "y\n")
    path = tmp_path / "two.zip"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(CandleFileError, match=r"a zip of one CSV was expected; it holds a\.csv, b\.csv"):
        read_candle_file(path)


def test_gaps_are_reported_not_refused(tmp_path: Path) -> None:
    path = tmp_path / "gappy.csv"
    drop = ("2024-01-01 05:00", "2024-01-01 06:00", "2024-01-01 20:00")
    write_project_csv(make_candles("2024-01-01", "2024-01-02", drop=drop), str(path))
    assert read_candle_file(path).gaps == [
        Gap(pd.Timestamp("2024-01-01T05:00Z"), pd.Timestamp("2024-01-01T06:00Z"), 2),
        Gap(pd.Timestamp("2024-01-01T20:00Z"), pd.Timestamp("2024-01-01T20:00Z"), 1),
    ]


HEADER = "open_time,open,high,low,close,volume"
GOOD = "2024-01-01T00:00:00Z,100,110,90,105,1.5"


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ("2024-01-01T01:00:00Z,100,1x0,90,105,1", "high", "'1x0' is not a number"),
        ("2024-01-01T01:00:00Z,100,110,90,nan,1", "close", "'nan' is not a number"),
        ("2024-01-01T01:00:00Z,100,110,90,1e999,1", "close", "inf is not a finite number"),
        ("2024-01-01T01:00:00Z,100,110,90,105,1_0", "volume", "'1_0' is not a number"),
        ("2024-01-01T01:00:00Z,-1,110,90,105,1", "open", "price -1.0 is not positive"),
        ("2024-01-01T01:00:00Z,100,110,0,105,1", "low", "price 0.0 is not positive"),
        ("2024-01-01T01:00:00Z,100,104,90,105,1", "high", "104.0 is below max(open, close) = 105.0"),
        ("2024-01-01T01:00:00Z,100,110,101,105,1", "low", "101.0 is above min(open, close) = 100.0"),
        ("2024-01-01T01:00:00Z,100,95,105,100,1", "high", "95.0 is below low = 105.0"),
        ("2024-01-01T01:00:00Z,100,110,90,105,-2", "volume", "volume -2.0 is negative"),
        ("2024-01-01T01:30:00Z,100,110,90,105,1", "open_time", "'2024-01-01T01:30:00Z' is not on the hour"),
        (
            "yesterday,100,110,90,105,1",
            "open_time",
            "'yesterday' is not a timestamp (expected ISO 8601, e.g. 2023-01-01T00:00:00Z)",
        ),
        (
            "2024-01-01T00:00:00Z,100,110,90,105,1",
            "open_time",
            "duplicate timestamp 2024-01-01T00:00Z (also line 2)",
        ),
        ("2024-01-01T01:00:00Z,100,110,90", "close", "missing"),
        ("2024-01-01T01:00:00Z,100,110,90,105,1,7", "row", "7 fields, the format has 6"),
    ],
    ids=[
        "malformed",
        "nan",
        "infinite",
        "underscore",
        "non-positive",
        "zero-low",
        "high-below-open-close",
        "low-above-open-close",
        "high-below-low",
        "negative-volume",
        "off-hour",
        "bad-time",
        "duplicate",
        "short-row",
        "long-row",
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
    assert (field, message) in [(e.field, e.message) for e in errors]
    assert f"bad.csv:3: field '{field}': {message}" in str(caught.value)


def test_every_bad_row_is_listed_up_to_a_cap(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        f"{HEADER}\n{GOOD}\n2024-01-01T01:00:00Z,x,110,90,105,1\n\n2024-01-01T02:00:00Z,100,110,90,105,y\n"
    )
    with pytest.raises(CandleFileError) as caught:
        read_candle_file(path)
    assert [(e.line, e.field) for e in caught.value.errors] == [(3, "open"), (5, "volume")]

    rows = [f"2024-01-{1 + hour // 24:02d}T{hour % 24:02d}:00:00Z,100,110,90,105,-1" for hour in range(60)]
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    with pytest.raises(CandleFileError) as caught:
        read_candle_file(path)
    assert len(caught.value.errors) == 50
    assert caught.value.total == 60
    assert [e.line for e in caught.value.errors] == list(range(2, 52))
    assert str(caught.value).startswith(f"{path}: 60 error(s):\n  bad.csv:2: field 'volume'")
    assert str(caught.value).endswith("... and 55 more")
