"""Putting validated candle files into the price store: every file checked before any row is written."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from btcmlops.data.candle_file import (
    CandleFile,
    CandleFileError,
    CandleFormat,
    Gap,
    RowError,
    find_gaps,
    read_candle_file,
)
from btcmlops.store import PriceStore, UpsertReport


@dataclass(frozen=True)
class LoadReport:
    """What a load read (the file, or all files as one) and what it changed in the store."""

    file: CandleFile
    upsert: UpsertReport

    @property
    def gaps(self) -> list[Gap]:
        """Missing hours in what was loaded: worth reporting, not a reason to refuse."""
        return self.file.gaps


def load_file_into_store(path: Path, store: PriceStore, fmt: CandleFormat | None = None) -> LoadReport:
    """Validate ``path`` whole, then upsert its candles in one transaction.

    Raises:
        CandleFileError: A row is bad; then nothing was written.
    """
    candle_file = read_candle_file(path, fmt)
    return LoadReport(file=candle_file, upsert=store.upsert_candles(candle_file.candles))


def load_files_into_store(
    paths: Sequence[Path], store: PriceStore, fmt: CandleFormat | None = None
) -> LoadReport:
    """Validate every file (and that no hour appears in two of them), then upsert all at once.

    Consecutive monthly archives are one load: either every month is stored or none is.

    Raises:
        ValueError: ``paths`` is empty.
        CandleFileError: A row is bad, or an hour is in two files; then nothing was written.
    """
    if not paths:
        raise ValueError("no files to load")
    files = [read_candle_file(path, fmt) for path in paths]
    candles = pd.concat([item.candles for item in files], ignore_index=True)
    repeated = candles["open_time"].duplicated(keep=False)
    if repeated.any():
        hour = candles.loc[repeated, "open_time"].iloc[0]
        owners = [str(item.path) for item in files if (item.candles["open_time"] == hour).any()]
        raise CandleFileError(
            files[0].path,
            [
                RowError(
                    files[0].path, 0, "open_time", f"hour {hour.isoformat()} is in {' and '.join(owners)}"
                )
            ],
        )
    candles = candles.sort_values("open_time", ignore_index=True)
    merged = CandleFile(
        path=Path(files[0].path) if len(files) == 1 else Path(files[0].path).parent,
        format=files[0].format,
        candles=candles,
        gaps=find_gaps(candles["open_time"]),
    )
    return LoadReport(file=merged, upsert=store.upsert_candles(candles))
