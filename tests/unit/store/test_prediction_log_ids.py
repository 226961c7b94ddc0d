"""The prediction log inserts each ``entry_id`` once, on SQLite and on the real MariaDB."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from btcmlops.store import LoggedPrediction, PriceStore

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _row(number: int, entry_id: str | None) -> LoggedPrediction:
    hour = T0 + timedelta(hours=number)
    return LoggedPrediction(
        hour, hour + timedelta(hours=1), 60_000.5 + number, 60_000.0, 3, hour, None, entry_id=entry_id
    )


def test_a_logged_entry_logged_again_is_skipped_and_ids_read_back(store: PriceStore) -> None:
    first = [_row(number, f"a{number}") for number in range(5)]
    store.log_predictions(first)
    store.log_predictions([*first[2:], _row(5, "a5"), _row(5, "a5")])  # a replay, and a repeat within it
    logged = store.read_predictions()
    assert [row.entry_id for row in logged] == [f"a{number}" for number in range(6)]
    assert logged[:5] == first


def test_rows_without_an_id_are_all_kept(store: PriceStore) -> None:
    store.log_predictions([_row(0, None), _row(0, None)])
    store.log_predictions([_row(0, None)])
    assert len(store.read_predictions()) == 3


def test_a_logged_interval_reads_back_exactly_and_a_row_without_one_reads_none(store: PriceStore) -> None:
    with_interval = replace(
        _row(0, "i0"), interval_level=0.8, lower_close=59_712.123456789, upper_close=60_301.987654321
    )
    store.log_predictions([with_interval, _row(1, "i1")])
    logged = store.read_predictions()
    assert logged == [with_interval, _row(1, "i1")]
    assert (logged[1].interval_level, logged[1].lower_close, logged[1].upper_close) == (None, None, None)
