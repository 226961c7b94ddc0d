"""Reading candle files: format detection, parsing and row validation, all or nothing.

Three formats are understood (``CandleFormat``), each plain, gzip-compressed or, for Binance's
archive, zipped; compression and format are told from the bytes and the first lines, never from the
file name. Every row is checked and every bad value is reported with its physical line and field, so
one pass over a file shows all that is wrong with it; a file with any bad row yields no candles.
Missing hours are not errors (exchanges halt): they are returned as ``Gap``s for the caller to report.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import pandas as pd

from btcmlops.candles import CANDLE_VALUES
from btcmlops.data.rules import PRICE_FIELDS, candle_problems

CANDLE_COLUMNS = ("open_time", *CANDLE_VALUES)
"""Columns of the canonical candle frame, in order."""

_VALUE_FIELDS = (*PRICE_FIELDS, "volume")
_HOUR = timedelta(hours=1)
_MAX_REPORTED = 50
_SHOWN_IN_MESSAGE = 5
_BINANCE_COLUMNS = 12
# A plain decimal: float() alone would also take "nan", "inf" and "1_000", none of which is a price.
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"\d+")
# Epoch units told apart by magnitude: seconds stay below 1e11 until the year 5138, milliseconds
# below 1e14 and microseconds below 1e17 likewise, and any of them is far above the next smaller unit.
_EPOCH_UNITS = ((10**11, 1, "seconds"), (10**14, 1_000, "milliseconds"), (10**17, 1_000_000, "microseconds"))


class CandleFormat(StrEnum):
    """The candle file formats ``read_candle_file`` understands."""

    PROJECT = "project"
    """This project's CSV: header ``open_time,open,high,low,close,volume``, ISO 8601 UTC times."""
    BINANCE = "binance"
    """Binance public-archive kline CSV: 12 columns, no header, open time in epoch ms (µs from 2025)."""
    CRYPTODATADOWNLOAD = "cryptodatadownload"
    """CryptoDataDownload hourly CSV: a URL line, a header, newest row first."""


@dataclass(frozen=True)
class RowError:
    """One refused value, located for a human: file, physical line (1-based; 0 = the whole file), field."""

    path: Path
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path.name}:{self.line}" if self.line else self.path.name
        return f"{where}: field '{self.field}': {self.message}"


class CandleFileError(ValueError):
    """A candle file was refused; ``errors`` lists the bad values found (the first ``_MAX_REPORTED``).

    Attributes:
        path: The refused file.
        errors: The reported errors, in file order.
        total: How many errors there were in all, reported or not.
    """

    def __init__(self, path: Path, errors: list[RowError], total: int | None = None) -> None:
        self.path = path
        self.errors = errors
        self.total = max(total if total is not None else 0, len(errors))
        shown = "\n  ".join(str(error) for error in errors[:_SHOWN_IN_MESSAGE])
        more = self.total - min(len(errors), _SHOWN_IN_MESSAGE)
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"{path}: {self.total} error(s):\n  {shown}{tail}")


@dataclass(frozen=True)
class Gap:
    """A run of missing hours between two candles; ``start`` and ``end`` are the first and last missing."""

    start: pd.Timestamp
    end: pd.Timestamp
    missing_hours: int


@dataclass(frozen=True)
class CandleFile:
    """A validated file: its candles in canonical form (``CANDLE_COLUMNS``) and the gaps between them."""

    path: Path
    format: CandleFormat
    candles: pd.DataFrame
    gaps: list[Gap]


_Record = tuple[int, list[str]]
"""A CSV record with the physical line it ends on."""


def _refuse(path: Path, line: int, field: str, message: str) -> CandleFileError:
    return CandleFileError(path, [RowError(path, line, field, message)])


def _decompress(path: Path) -> bytes:
    """Return the file's bytes, unpacking gzip or a one-member zip recognised by their magic bytes."""
    raw = path.read_bytes()
    try:
        if raw[:2] == b"\x1f\x8b":
            return gzip.decompress(raw)
        if raw[:4] == b"PK\x03\x04":
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                members = [info for info in archive.infolist() if not info.is_dir()]
                if len(members) != 1:
                    names = ", ".join(info.filename for info in members) or "nothing"
                    raise _refuse(path, 0, "file", f"a zip of one CSV was expected; it holds {names}")
                return archive.read(members[0])
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as error:
        raise _refuse(path, 0, "file", f"cannot decompress: {error}") from None
    return raw


def _records(path: Path, text: str) -> list[_Record]:
    """Split ``text`` into non-blank CSV records, each with its physical line number."""
    reader = csv.reader(io.StringIO(text))
    records: list[_Record] = []
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                records.append((reader.line_num, [cell.strip() for cell in cells]))
    except csv.Error as error:
        raise _refuse(path, reader.line_num, "row", f"not CSV: {error}") from None
    return records


def _is_url_line(cells: list[str]) -> bool:
    return len(cells) == 1 and (
        "cryptodatadownload" in cells[0].lower() or cells[0].lower().startswith("http")
    )


def _cdd_column(name: str) -> str:
    """Normalise a CryptoDataDownload column name (older files say ``Unix Timestamp``)."""
    lowered = name.lower()
    return "unix" if lowered.startswith("unix") else lowered


def _is_cdd_header(cells: list[str]) -> bool:
    names = {_cdd_column(cell) for cell in cells}
    return bool(names & {"unix", "date"}) and {"open", "close"} <= names


def _detect_format(path: Path, records: list[_Record]) -> CandleFormat:
    """Tell the format from the first records; refuse a file that matches none."""
    if not records:
        raise _refuse(path, 0, "file", "the file is empty")
    line, first = records[0]
    lowered = [cell.lower() for cell in first]
    if _is_url_line(first) or _is_cdd_header(first):
        return CandleFormat.CRYPTODATADOWNLOAD
    if lowered == list(CANDLE_COLUMNS):
        return CandleFormat.PROJECT
    if len(first) == _BINANCE_COLUMNS and (_INTEGER.fullmatch(first[0]) or lowered[0] == "open_time"):
        return CandleFormat.BINANCE
    raise _refuse(
        path,
        line,
        "header",
        f"unknown candle format (first line {','.join(first)[:80]!r}); expected this project's CSV "
        f"({','.join(CANDLE_COLUMNS)}), a Binance kline CSV (12 columns) or a CryptoDataDownload CSV",
    )


@dataclass(frozen=True)
class _Layout:
    """Where a format keeps what: the data records, the column of each field and its name in the file.

    Errors name a field as the file does (``Volume BTC``), so it can be found in the file's header.
    """

    rows: Sequence[_Record]
    time_column: int
    value_columns: tuple[int, ...]
    width: int
    parse_time: Callable[[str], datetime]
    names: tuple[str, ...] = CANDLE_COLUMNS
    """The file's names of ``CANDLE_COLUMNS``."""

    @property
    def time_field(self) -> str:
        return self.names[0]

    def field(self, canonical: str) -> str:
        return self.names[CANDLE_COLUMNS.index(canonical)]


def _iso_time(text: str) -> datetime:
    """Parse ISO 8601; a time without an offset is UTC, as the project format defines."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("expected ISO 8601, e.g. 2023-01-01T00:00:00Z") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _cdd_date(text: str) -> datetime:
    try:
        return _iso_time(text)
    except ValueError:
        pass
    try:
        return datetime.strptime(text, "%Y-%m-%d %I-%p").replace(tzinfo=UTC)  # their older files
    except ValueError:
        raise ValueError("expected 2023-01-01 00:00:00 or 2023-01-01 12-AM") from None


class _EpochParser:
    """Epoch timestamps, the unit told from the magnitude.

    With ``one_unit_per_file`` (Binance: milliseconds until 2024, microseconds from 2025, never mixed in
    one file), the first row fixes the unit and a row in another unit is an error rather than a
    silently different hour. Without it (CryptoDataDownload, whose files have mixed seconds and
    milliseconds), each value's own magnitude decides.
    """

    def __init__(self, allowed: tuple[str, ...], *, one_unit_per_file: bool) -> None:
        self._allowed = allowed
        self._one_unit_per_file = one_unit_per_file
        self._file_unit: str | None = None

    def __call__(self, text: str) -> datetime:
        if not _INTEGER.fullmatch(text):
            raise ValueError("not an epoch integer")
        value = int(text)
        _, per_second, unit = next(
            (item for item in _EPOCH_UNITS if value < item[0]), (0, 0, "an unknown unit")
        )
        if unit not in self._allowed:
            raise ValueError(f"the magnitude says {unit}; this format uses {' or '.join(self._allowed)}")
        if self._one_unit_per_file:
            if self._file_unit is None:
                self._file_unit = unit
            elif unit != self._file_unit:
                raise ValueError(f"it is in {unit}, the file's first row in {self._file_unit}")
        return datetime.fromtimestamp(value // per_second, UTC) + timedelta(
            microseconds=(value % per_second) * 1_000_000 // per_second
        )


def _project_layout(path: Path, records: list[_Record]) -> _Layout:
    line, header = records[0]
    if [cell.lower() for cell in header] != list(CANDLE_COLUMNS):
        raise _refuse(path, line, "header", f"expected {','.join(CANDLE_COLUMNS)}, found {','.join(header)}")
    return _Layout(records[1:], 0, (1, 2, 3, 4, 5), len(CANDLE_COLUMNS), _iso_time)


def _binance_layout(records: list[_Record]) -> _Layout:
    # Binance's archive has no header, but CSVs exported elsewhere in its layout sometimes do.
    start = 0 if _INTEGER.fullmatch(records[0][1][0]) else 1
    parse = _EpochParser(("milliseconds", "microseconds"), one_unit_per_file=True)
    return _Layout(records[start:], 0, (1, 2, 3, 4, 5), _BINANCE_COLUMNS, parse)


def _base_volume_column(path: Path, line: int, columns: dict[str, int], symbol: str) -> int:
    """Pick the volume in the base asset (``Volume BTC`` of BTC/USDT), not the quote-asset one."""
    volumes = {
        name.replace("_", " ").removeprefix("volume").strip().upper(): index
        for name, index in columns.items()
        if name.startswith("volume")
    }
    if not volumes:
        raise _refuse(path, line, "header", "no volume column")
    if len(volumes) == 1:
        return next(iter(volumes.values()))
    pair = re.sub(r"[^A-Z0-9]", "", symbol.upper())
    bases = [currency for currency in volumes if currency and pair.startswith(currency) and pair != currency]
    if len(bases) != 1:
        raise _refuse(
            path,
            line,
            "header",
            f"cannot tell the base-asset volume among {sorted(volumes)} for symbol {symbol!r}",
        )
    return volumes[bases[0]]


def _cdd_layout(path: Path, records: list[_Record]) -> _Layout:
    header_at = 1 if _is_url_line(records[0][1]) else 0
    if len(records) <= header_at:
        raise _refuse(path, records[0][0], "header", "no header after the URL line")
    line, header = records[header_at]
    columns = {_cdd_column(name): index for index, name in enumerate(header)}
    needed = [name for name in PRICE_FIELDS if name not in columns]
    if "unix" not in columns and "date" not in columns:
        needed.insert(0, "unix or date")
    if needed:
        raise _refuse(path, line, "header", f"missing column(s): {', '.join(needed)}")
    rows = records[header_at + 1 :]
    symbol_at = columns.get("symbol")
    symbol = rows[0][1][symbol_at] if rows and symbol_at is not None and symbol_at < len(rows[0][1]) else ""
    volume_at = _base_volume_column(path, line, columns, symbol)
    parse: Callable[[str], datetime]
    if "unix" in columns:
        time_at, parse = columns["unix"], _EpochParser(("seconds", "milliseconds"), one_unit_per_file=False)
    else:
        time_at, parse = columns["date"], _cdd_date
    value_columns = (*(columns[name] for name in PRICE_FIELDS), volume_at)
    names = tuple(header[column] for column in (time_at, *value_columns))
    return _Layout(rows, time_at, value_columns, len(header), parse, names)


def _layout(path: Path, fmt: CandleFormat, records: list[_Record]) -> _Layout:
    if not records:
        raise _refuse(path, 0, "file", "the file is empty")
    if fmt is CandleFormat.PROJECT:
        return _project_layout(path, records)
    if fmt is CandleFormat.BINANCE:
        return _binance_layout(records)
    return _cdd_layout(path, records)


def _check_row(
    path: Path, layout: _Layout, line: int, cells: list[str]
) -> tuple[datetime | None, tuple[float, ...] | None, list[RowError]]:
    """Parse and check one row; return its time and values, or the errors that refuse it."""
    errors: list[RowError] = []
    if len(cells) != layout.width:
        errors.append(RowError(path, line, "row", f"{len(cells)} fields, the format has {layout.width}"))
    moment: datetime | None = None
    time_text = cells[layout.time_column] if layout.time_column < len(cells) else ""
    if not time_text:
        errors.append(RowError(path, line, layout.time_field, "missing"))
    else:
        try:
            moment = layout.parse_time(time_text)
        except (ValueError, OverflowError, OSError) as error:
            errors.append(
                RowError(path, line, layout.time_field, f"{time_text!r} is not a timestamp ({error})")
            )
        if moment is not None and (moment.minute or moment.second or moment.microsecond):
            errors.append(RowError(path, line, layout.time_field, f"{time_text!r} is not on the hour"))
            moment = None
    numbers: list[float] = []
    for name, column in zip(_VALUE_FIELDS, layout.value_columns, strict=True):
        text = cells[column] if column < len(cells) else ""
        if not text:
            errors.append(RowError(path, line, layout.field(name), "missing"))
        elif not _NUMBER.fullmatch(text):
            errors.append(RowError(path, line, layout.field(name), f"{text!r} is not a number"))
        else:
            numbers.append(float(text))
    if len(numbers) == len(_VALUE_FIELDS):
        errors.extend(
            RowError(path, line, layout.field(field), message) for field, message in candle_problems(*numbers)
        )
    if errors or moment is None:
        return None, None, errors
    return moment, tuple(numbers), []


def find_gaps(open_times: pd.Series | pd.DatetimeIndex) -> list[Gap]:
    """Find the runs of missing hours between the first and the last of ascending ``open_times``."""
    times = pd.DatetimeIndex(open_times)
    if len(times) < 2:
        return []
    steps = times[1:] - times[:-1]
    hour = pd.Timedelta(_HOUR)
    return [
        Gap(times[index] + hour, times[index + 1] - hour, int(steps[index] / hour) - 1)
        for index in (steps > hour).nonzero()[0].tolist()
    ]


def read_candle_file(path: Path, fmt: CandleFormat | None = None) -> CandleFile:
    """Read and validate a whole candle file.

    Args:
        path: A file in one of the ``CandleFormat``s, plain, gzip-compressed or in a one-file zip.
        fmt: The format, when it must not be detected from the first lines.

    Returns:
        The candles in canonical form (ascending, unique, tz-aware UTC hours, float64 values) and the
        gaps between them.

    Raises:
        CandleFileError: The format is unknown or a row is bad; the error lists every bad value (up to
            ``_MAX_REPORTED``) by line and field, so a file is fixed in one round, not one per error.
    """
    path = Path(path)
    try:
        text = _decompress(path).decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _refuse(path, 0, "file", f"not UTF-8 text ({error})") from None
    records = _records(path, text)
    fmt = fmt or _detect_format(path, records)
    layout = _layout(path, fmt, records)
    errors: list[RowError] = []
    total = 0
    first_seen: dict[datetime, int] = {}
    times: list[datetime] = []
    values: list[tuple[float, ...]] = []
    for line, cells in layout.rows:
        moment, numbers, row_errors = _check_row(path, layout, line, cells)
        if moment is not None:
            if moment in first_seen:
                other = first_seen[moment]
                message = f"duplicate timestamp {moment:%Y-%m-%dT%H:%MZ} (also line {other})"
                row_errors.append(RowError(path, line, layout.time_field, message))
            else:
                first_seen[moment] = line
        total += len(row_errors)
        errors.extend(row_errors[: max(0, _MAX_REPORTED - len(errors))])
        if not row_errors and moment is not None and numbers is not None:
            times.append(moment)
            values.append(numbers)
    if errors:
        raise CandleFileError(path, errors, total)
    if not times:
        raise _refuse(path, records[-1][0], "file", "no candles after the header")
    frame = pd.DataFrame(values, columns=list(CANDLE_COLUMNS[1:]), dtype="float64")
    frame.insert(0, "open_time", pd.DatetimeIndex(times).as_unit("ns"))
    frame = frame.sort_values("open_time", ignore_index=True)
    return CandleFile(path=path, format=fmt, candles=frame, gaps=find_gaps(frame["open_time"]))
