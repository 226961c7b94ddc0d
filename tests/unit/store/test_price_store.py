"""The price store, on SQLite and on the real MariaDB: migrations, upserts, reads, decisions."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from btcmlops.data import CandleFileError, load_file_into_store
from btcmlops.store import DecisionRow, PriceStore
from factories import make_candles, write_project_csv

CANDLES = make_candles("2024-01-01", "2024-01-03 23:00")


def test_migrate_twice_is_harmless(store: PriceStore) -> None:
    store.migrate()
    assert store.candle_count() == 0


def test_upsert_twice_changes_nothing_and_round_trips_exactly(store: PriceStore) -> None:
    first = store.upsert_candles(CANDLES)
    second = store.upsert_candles(CANDLES)
    assert (first.inserted, first.updated, first.unchanged) == (72, 0, 0)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 72)
    pd.testing.assert_frame_equal(store.read_candles(), CANDLES)


def test_a_changed_candle_is_updated(store: PriceStore) -> None:
    store.upsert_candles(CANDLES)
    changed = CANDLES.copy()
    changed.loc[5, ["high", "close"]] = [changed.loc[5, "high"] * 1.01, changed.loc[5, "close"] * 1.005]
    report = store.upsert_candles(changed.iloc[3:10])
    assert (report.inserted, report.updated, report.unchanged) == (0, 1, 6)
    pd.testing.assert_frame_equal(store.read_candles(), changed)


def test_read_range_is_inclusive_and_utc(store: PriceStore) -> None:
    store.upsert_candles(CANDLES)
    start = datetime(2024, 1, 2, 0, tzinfo=UTC)
    end = datetime(2024, 1, 2, 5, tzinfo=UTC)
    frame = store.read_candles(start=start, end=end)
    assert list(frame["open_time"]) == list(pd.date_range(start, end, freq="h"))
    assert str(frame["open_time"].dtype) == "datetime64[ns, UTC]"
    with pytest.raises(ValueError, match="no time zone"):
        store.read_candles(end=datetime(2024, 1, 2))


def test_a_bad_file_stores_nothing(store: PriceStore, tmp_path: Path) -> None:
    store.upsert_candles(CANDLES.iloc[:10])
    path = tmp_path / "mixed.csv"
    write_project_csv(CANDLES, str(path))
    lines = path.read_text().splitlines()
    lines[-1] = lines[-1].replace(lines[-1].split(",")[4], "-5")  # the last row's close
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CandleFileError, match=r"mixed\.csv:73"):
        load_file_into_store(path, store)
    assert store.candle_count() == 10


def _decision(eval_start: datetime, promoted: bool = True) -> DecisionRow:
    return DecisionRow(
        registered_model="m",
        eval_start=eval_start,
        eval_end=eval_start.replace(day=28),
        champion_version=1,
        challenger_version=2,
        champion_mae=101.5,
        challenger_mae=99.25,
        naive_mae=103.0,
        metrics={"champion": {"mae": 101.5}, "challenger": {"mae": 99.25}},
        promoted=promoted,
        reason="challenger wins",
        decided_at=datetime(2024, 3, 1, 0, 0, 1, tzinfo=UTC),
    )


def test_decisions_are_recorded_once_per_shadow_month(store: PriceStore) -> None:
    february = _decision(datetime(2024, 2, 1, tzinfo=UTC))
    store.record_decision(february)
    store.record_decision(february)  # a restart repeating itself: no second row
    store.record_decision(_decision(datetime(2024, 1, 1, tzinfo=UTC), promoted=False))
    rows = store.list_decisions("m")
    assert [row.eval_start for row in rows] == [
        datetime(2024, 1, 1, tzinfo=UTC),
        datetime(2024, 2, 1, tzinfo=UTC),
    ]
    assert rows[1] == february
    assert store.list_decisions("other") == []
    with pytest.raises(ValueError, match="a different decision is already recorded"):
        store.record_decision(_decision(datetime(2024, 2, 1, tzinfo=UTC), promoted=False))
