"""Candle data: read and validate candle files in three formats, fetch Binance archives, load the store.

The in-memory form everywhere is a DataFrame with ``CANDLE_COLUMNS``: ``open_time`` (tz-aware UTC,
the open of the hour, ascending, unique) and float64 OHLCV. A file is validated whole before anything
of it reaches the store: one bad row and the file is refused with every error's file, line and field.
"""

from btcmlops.data.candle_file import (
    CANDLE_COLUMNS,
    CandleFile,
    CandleFileError,
    CandleFormat,
    Gap,
    RowError,
    find_gaps,
    read_candle_file,
)
from btcmlops.data.fetch import FetchError, fetch_binance_monthly
from btcmlops.data.loading import LoadReport, load_file_into_store, load_files_into_store

__all__ = [
    "CANDLE_COLUMNS",
    "CandleFile",
    "CandleFileError",
    "CandleFormat",
    "FetchError",
    "Gap",
    "LoadReport",
    "RowError",
    "fetch_binance_monthly",
    "find_gaps",
    "load_file_into_store",
    "load_files_into_store",
    "read_candle_file",
]
