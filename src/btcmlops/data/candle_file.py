"""Reading candle files: format detection, parsing and row validation, all or nothing."""

from __future__ import annotations

import csv
import gzip
import io
import math
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import pandas as pd

from btcmlops.data.rules import candle_problems

CANDLE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume")
_PRICES = ("open", "high", "low", "close")
_HOUR = timedelta(hours=1)
_MAX_REPORTED = 50


class CandleFormat(StrEnum):
    """The candle file formats ``data load`` understands."""

    PROJECT = "project"
    """This project's CSV: header ``open_time,open,high,low,close,volume``, ISO 8601 UTC times."""
    BINANCE = "binance"
    """Binance public-archive kline CSV: 12 columns, no header, open time in epoch ms (µs from 2025)."""
    CRYPTODATADOWNLOAD = "cryptodatadownload"
    """CryptoDataDownload hourly CSV: a URL line, a header, newest row first."""


@dataclass(frozen=True)
class RowError:
    """One refused value, located for a human: file, physical line (1-based) and field."""

    path: Path
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: field '{self.field}': {self.message}"


class CandleFileError(ValueError):
    """A candle file was refused; ``errors`` lists every bad value found (up to a cap)."""

    def __init__(self, path: Path, errors: list[RowError], total: int | None = None) -> None:
        self.path = path
        self.errors = errors
        self.total = total if total is not None else len(errors)
        shown = "\n  ".join(str(error) for error in errors[:5])
        more = f"\n  ... and {self.total - 5} more" if self.total > 5 else ""
        super().__init__(f"{path}: {self.total} bad value(s), nothing stored:\n  {shown}{more}")


@dataclass(frozen=True)
class Gap:
    """A run of missing hours between two candles (``start`` and ``end`` are the missing hours)."""

    start: pd.Timestamp
    end: pd.Timestamp
    missing_hours: int


@dataclass(frozen=True)
class CandleFile:
    """A validated file: its candles in canonical form and the gaps between them."""

    path: Path
    format: CandleFormat
    candles: pd.DataFrame
    gaps: list[Gap]


@dataclass(frozen=True)
class _RawRow:
    line: int
    time: str
    values: dict[str, str]


def _text(path: Path) -> str:
    """The file's text, decompressing gzip or a one-CSV zip by content, not by name."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    elif raw[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            members = [name for name in archive.namelist() if not name.endswith("/")]
            if len(members) != 1:
                raise CandleFileError(
                    path, [RowError(path, 0, "file", f"zip holds {len(members)} files, not 1")]
                )
            raw = archive.read(members[0])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise CandleFileError(path, [RowError(path, 0, "file", f"not UTF-8 text ({error})")]) from None


def _lines(text: str) -> list[tuple[int, list[str]]]:
    """Non-blank CSV records with their physical line numbers."""
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            records.append((number, next(csv.reader([line]))))
    return records


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def detect_format(path: Path, records: list[tuple[int, list[str]]]) -> CandleFormat:
    """Tell the format from the first records; refuse a file that matches none."""
    if not records:
        raise CandleFileError(path, [RowError(path, 1, "file", "the file is empty")])
    first = [cell.strip() for cell in records[0][1]]
    lowered = [cell.lower() for cell in first]
    if len(first) == 1 and ("cryptodatadownload" in lowered[0] or lowered[0].startswith("http")):
        return CandleFormat.CRYPTODATADOWNLOAD
    if lowered[:6] == list(CANDLE_COLUMNS) and len(first) == 6:
        return CandleFormat.PROJECT
    if len(first) == 12 and (_is_number(first[0]) or lowered[0] == "open_time"):
        return CandleFormat.BINANCE
    raise CandleFileError(
        path,
        [
            RowError(
                path,
                records[0][0],
                "header",
                f"unknown candle format (first line {','.join(first)[:80]!r}); expected this project's "
                "CSV, a Binance kline CSV or a CryptoDataDownload CSV (or pass --format)",
            )
        ],
    )


def _epoch(text: str) -> datetime:
    """Epoch seconds, milliseconds or microseconds, told apart by magnitude."""
    value = int(text)
    if value >= 10**14:
        return datetime.fromtimestamp(value / 1_000_000, UTC)
    if value >= 10**11:
        return datetime.fromtimestamp(value / 1_000, UTC)
    return datetime.fromtimestamp(value, UTC)


def _iso(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _cdd_date(text: str) -> datetime:
    try:
        return _iso(text)
    except ValueError:
        return datetime.strptime(text, "%Y-%m-%d %I-%p").replace(tzinfo=UTC)  # older CDD files


def _project_rows(records: list[tuple[int, list[str]]]) -> Iterator[_RawRow]:
    for line, cells in records[1:]:
        yield _RawRow(
            line, cells[0] if cells else "", dict(zip((*_PRICES, "volume"), cells[1:6], strict=False))
        )


def _binance_rows(records: list[tuple[int, list[str]]]) -> Iterator[_RawRow]:
    start = 1 if records and not _is_number(records[0][1][0]) else 0
    for line, cells in records[start:]:
        yield _RawRow(line, cells[0], dict(zip((*_PRICES, "volume"), cells[1:6], strict=False)))


def _cdd_rows(path: Path, records: list[tuple[int, list[str]]]) -> tuple[Iterator[_RawRow], str]:
    if len(records) < 2:
        raise CandleFileError(path, [RowError(path, 2, "header", "no header after the URL line")])
    header_line, header = records[1]
    columns = {name.strip().lower(): index for index, name in enumerate(header)}
    missing = [name for name in _PRICES if name not in columns]
    if missing or ("unix" not in columns and "date" not in columns):
        raise CandleFileError(
            path, [RowError(path, header_line, "header", f"missing column(s) {missing or ['unix/date']}")]
        )
    volumes = [name for name in columns if name.startswith("volume")]
    base = ""
    if "symbol" in columns and len(records) > 2:
        symbol = records[2][1][columns["symbol"]].strip().upper()
        base = symbol.split("/")[0] if "/" in symbol else symbol.removesuffix("USDT").removesuffix("USD")
    chosen = next(
        (name for name in volumes if name == f"volume {base.lower()}"), volumes[0] if volumes else None
    )
    if chosen is None:
        raise CandleFileError(path, [RowError(path, header_line, "header", "no volume column")])
    time_column = "unix" if "unix" in columns else "date"

    def rows() -> Iterator[_RawRow]:
        for line, cells in records[2:]:
            picked = {name: cells[columns[name]] if columns[name] < len(cells) else "" for name in _PRICES}
            volume_index = columns[chosen]
            picked["volume"] = cells[volume_index] if volume_index < len(cells) else ""
            time_index = columns[time_column]
            yield _RawRow(line, cells[time_index] if time_index < len(cells) else "", picked)

    return rows(), time_column


def _parse(
    path: Path, fmt: CandleFormat, records: list[tuple[int, list[str]]]
) -> tuple[Iterator[_RawRow], Callable[[str], datetime], str]:
    if fmt is CandleFormat.PROJECT:
        return _project_rows(records), _iso, "open_time"
    if fmt is CandleFormat.BINANCE:
        return _binance_rows(records), _epoch, "open_time"
    rows, time_column = _cdd_rows(path, records)
    return rows, (_epoch if time_column == "unix" else _cdd_date), time_column


def _validate_row(
    path: Path, row: _RawRow, parse_time: Callable[[str], datetime], time_field: str
) -> tuple[datetime | None, tuple[float, ...] | None, list[RowError]]:
    errors: list[RowError] = []
    moment: datetime | None = None
    try:
        moment = parse_time(row.time.strip())
    except (ValueError, OverflowError, OSError):
        errors.append(RowError(path, row.line, time_field, f"{row.time!r} is not a timestamp"))
    if moment is not None and (moment.minute or moment.second or moment.microsecond):
        errors.append(RowError(path, row.line, time_field, f"{row.time!r} is not on the hour"))
    numbers: dict[str, float] = {}
    for name in (*_PRICES, "volume"):
        text = row.values.get(name)
        if text is None:
            errors.append(RowError(path, row.line, name, "missing"))
            continue
        try:
            number = float(text)
        except ValueError:
            errors.append(RowError(path, row.line, name, f"{text!r} is not a number"))
            continue
        if not math.isfinite(number):
            errors.append(RowError(path, row.line, name, f"{text!r} is not a finite number"))
            continue
        numbers[name] = number
    if len(numbers) == len(_PRICES) + 1:
        for field, message in candle_problems(*(numbers[name] for name in (*_PRICES, "volume"))):
            errors.append(RowError(path, row.line, field, message))
    if errors or moment is None:
        return None, None, errors
    return moment, tuple(numbers[name] for name in (*_PRICES, "volume")), []


def find_gaps(open_times: pd.Series) -> list[Gap]:
    """Runs of missing hours between the first and the last candle."""
    times = pd.DatetimeIndex(open_times)
    if len(times) < 2:
        return []
    steps = times[1:] - times[:-1]
    gaps = []
    for index in (steps > pd.Timedelta(_HOUR)).nonzero()[0].tolist():
        missing = int(steps[index] / pd.Timedelta(_HOUR)) - 1
        gaps.append(Gap(times[index] + _HOUR, times[index + 1] - _HOUR, missing))
    return gaps


def read_candle_file(path: Path, fmt: CandleFormat | None = None) -> CandleFile:
    """Read and validate a whole candle file; raise ``CandleFileError`` naming every bad value."""
    path = Path(path)
    records = _lines(_text(path))
    fmt = fmt or detect_format(path, records)
    rows, parse_time, time_field = _parse(path, fmt, records)
    errors: list[RowError] = []
    total = 0
    seen: dict[datetime, int] = {}
    times: list[datetime] = []
    values: list[tuple[float, ...]] = []
    for row in rows:
        moment, numbers, row_errors = _validate_row(path, row, parse_time, time_field)
        if moment is not None and moment in seen:
            row_errors.append(
                RowError(
                    path,
                    row.line,
                    time_field,
                    f"duplicate timestamp {moment.isoformat()} (also line {seen[moment]})",
                )
            )
        total += len(row_errors)
        errors.extend(row_errors[: max(0, _MAX_REPORTED - len(errors))])
        if moment is not None and numbers is not None and not row_errors:
            seen[moment] = row.line
            times.append(moment)
            values.append(numbers)
    if errors:
        raise CandleFileError(path, errors, total)
    if not times:
        raise CandleFileError(path, [RowError(path, records[-1][0] if records else 1, "file", "no candles")])
    frame = pd.DataFrame(values, columns=list(CANDLE_COLUMNS[1:]), dtype="float64")
    frame.insert(0, "open_time", pd.DatetimeIndex(times).astype("datetime64[ns, UTC]"))
    frame = frame.sort_values("open_time", ignore_index=True)
    return CandleFile(path=path, format=fmt, candles=frame, gaps=find_gaps(frame["open_time"]))
