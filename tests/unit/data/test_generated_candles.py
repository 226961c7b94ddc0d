"""bench/generate_candles.py: one seed, one file; candles the reader accepts; volatility that clusters."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from btcmlops.data import CandleFormat, read_candle_file

SCRIPT = Path(__file__).resolve().parents[3] / "bench" / "generate_candles.py"


@pytest.fixture(scope="module")
def generator() -> Iterator[ModuleType]:
    """The bench script as a module (bench/ is no package: loaded from its file).

    It is in ``sys.modules`` while it runs (its dataclass looks its module up there), and only then.
    """
    spec = importlib.util.spec_from_file_location("generate_candles", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_one_seed_writes_one_file_byte_for_byte(generator: ModuleType, tmp_path: Path) -> None:
    first = generator.write_candles(generator.generate_candles(1, seed=3), tmp_path / "a.csv.gz")
    again = generator.write_candles(generator.generate_candles(1, seed=3), tmp_path / "b.csv.gz")
    other = generator.write_candles(generator.generate_candles(1, seed=4), tmp_path / "c.csv.gz")
    assert first.read_bytes() == again.read_bytes()
    assert first.read_bytes() != other.read_bytes()


def test_the_candle_reader_accepts_every_hour_of_the_years(generator: ModuleType, tmp_path: Path) -> None:
    generated = generator.generate_candles(1, seed=3)
    read = read_candle_file(generator.write_candles(generated, tmp_path / "one-year.csv.gz"))
    candles = read.candles
    assert read.format is CandleFormat.PROJECT
    assert read.gaps == []
    assert len(candles) == 365 * 24  # 2015: every hour of the calendar year
    assert candles["open_time"].iloc[0] == generator.START
    assert (candles["high"] >= candles[["open", "close"]].max(axis=1)).all()
    assert (candles["low"] <= candles[["open", "close"]].min(axis=1)).all()
    assert (candles["volume"] >= 0).all()
    # What the file holds is what was generated: the rounding happened before writing.
    assert np.array_equal(
        candles[["open", "high", "low", "close"]], generated[["open", "high", "low", "close"]]
    )


def test_volatility_clusters(generator: ModuleType) -> None:
    closes = generator.generate_candles(1, seed=3)["close"].to_numpy()
    squared = np.diff(np.log(closes)) ** 2
    lag_one = np.corrcoef(squared[1:], squared[:-1])[0, 1]
    assert lag_one > 0.05  # calm hours follow calm hours; independent returns would give about 0
