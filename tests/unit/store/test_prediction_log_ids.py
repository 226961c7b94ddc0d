"""The prediction log inserts each ``entry_id`` once, on SQLite and on the real MariaDB."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text

import btcmlops.store
from btcmlops.store import LoggedPrediction, PriceStore

MIGRATIONS = Path(btcmlops.store.__file__).resolve().parent / "migrations"

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


def test_the_log_reads_in_logged_order_after_a_row_id(store: PriceStore) -> None:
    """What a reader that follows the log (the live scores) takes: rows after an id, by id, a page at once,
    whatever their target hours."""
    store.log_predictions([_row(4, "b4"), _row(1, "b1"), _row(3, "b3")])
    every = store.read_predictions_logged_after(0)
    assert [row.entry_id for row in every] == ["b4", "b1", "b3"]
    assert every[0].id is not None
    after_first = store.read_predictions_logged_after(every[0].id, limit=1)
    assert [row.entry_id for row in after_first] == ["b1"]
    assert every[-1].id is not None
    assert store.read_predictions_logged_after(every[-1].id) == []


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


def test_rows_logged_before_migration_0011_read_back_without_an_interval(store_url: str) -> None:
    """A store at 0010 with rows in its log: the upgrade adds the interval columns, NULL on those rows."""
    engine = create_engine(store_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0010")
        connection.execute(
            text(
                "INSERT INTO prediction_log (timestamp, target_time, predicted_close, last_close, "
                "model_version, served_at, entry_id) VALUES (:t, :target, 60000.5, 60000.0, 3, :t, 'before')"
            ),
            {"t": T0.replace(tzinfo=None), "target": (T0 + timedelta(hours=1)).replace(tzinfo=None)},
        )
    engine.dispose()
    store = PriceStore(store_url)
    store.migrate()
    (row,) = store.read_predictions()
    store.dispose()
    assert (row.entry_id, row.predicted_close, row.timestamp) == ("before", 60000.5, T0)
    assert (row.interval_level, row.lower_close, row.upper_close) == (None, None, None)
