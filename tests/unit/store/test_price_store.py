"""The price store, on SQLite and on the real MariaDB: migrations, upserts, reads, decisions."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, event, inspect, text

from btcmlops.data import CANDLE_COLUMNS, CandleFileError, load_file_into_store, read_candle_file
from btcmlops.settings import EMBEDDED_DATA_FILE
from btcmlops.store import DecisionConflictError, DecisionRow, PriceStore
from factories import make_candles, write_project_csv

CANDLES = make_candles("2024-01-01", "2024-01-03 23:00")
HEAD = "0011"


def _version(url: str, table: str = "btcmlops_alembic_version") -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(f"SELECT version_num FROM {table}")).scalars())
    finally:
        engine.dispose()


def test_migrate_twice_is_harmless(store: PriceStore, store_url: str) -> None:
    store.upsert_candles(CANDLES.iloc[:3])
    store.migrate()
    assert _version(store_url) == [HEAD]
    assert store.candle_count() == 3


def test_another_applications_alembic_version_is_left_alone(store_url: str) -> None:
    engine = create_engine(store_url)
    with engine.begin() as connection:  # e.g. MLflow's tracking tables in the same database
        connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        connection.execute(text("INSERT INTO alembic_version VALUES ('1b5f0d9ad7c1')"))
    engine.dispose()
    store = PriceStore(store_url)
    store.migrate()
    store.dispose()
    assert _version(store_url) == [HEAD]
    assert _version(store_url, "alembic_version") == ["1b5f0d9ad7c1"]


def test_an_sqlite_store_makes_its_folder(tmp_path: Path) -> None:
    store = PriceStore(f"sqlite:///{tmp_path / 'a' / 'b' / 'prices.db'}")
    store.migrate()
    store.dispose()
    assert (tmp_path / "a" / "b" / "prices.db").is_file()


def test_upsert_twice_changes_nothing_and_round_trips_exactly(store: PriceStore) -> None:
    first = store.upsert_candles(CANDLES)
    second = store.upsert_candles(CANDLES)
    assert (first.inserted, first.updated, first.unchanged) == (72, 0, 0)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 72)
    pd.testing.assert_frame_equal(store.read_candles(), CANDLES)


def test_a_changed_candle_is_updated_and_new_ones_inserted(store: PriceStore) -> None:
    store.upsert_candles(CANDLES.iloc[:8])
    changed = CANDLES.copy()
    changed.loc[5, ["high", "close"]] = [changed.loc[5, "high"] * 1.01, changed.loc[5, "close"] * 1.005]
    report = store.upsert_candles(changed.iloc[3:10])
    assert (report.inserted, report.updated, report.unchanged) == (2, 1, 4)
    pd.testing.assert_frame_equal(store.read_candles(), changed.iloc[:10])


def test_the_shipped_file_loads_once_and_reads_back_exactly(store: PriceStore) -> None:
    candles = read_candle_file(EMBEDDED_DATA_FILE).candles
    report = load_file_into_store(EMBEDDED_DATA_FILE, store)
    assert (report.upsert.inserted, report.upsert.updated, report.upsert.unchanged) == (17_543, 0, 0)
    assert [gap.start for gap in report.gaps] == [pd.Timestamp("2023-03-24T13:00Z")]
    again = load_file_into_store(EMBEDDED_DATA_FILE, store)
    assert (again.upsert.inserted, again.upsert.updated, again.upsert.unchanged) == (0, 0, 17_543)
    assert store.candle_count() == 17_543
    pd.testing.assert_frame_equal(store.read_candles(), candles)


def test_upserting_the_shipped_file_is_bulk_work(tmp_path: Path) -> None:
    """Two upserts of the 17,543 shipped candles take a handful of statements, not one per row.

    Counted, not timed (a timed bound failed on a busy machine): a row-by-row write would send
    thousands of statements; the cost in seconds is a benchmark's business.
    """
    candles = read_candle_file(EMBEDDED_DATA_FILE).candles
    store = PriceStore(f"sqlite:///{tmp_path / 'prices.db'}")
    store.migrate()
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(store._engine, "before_cursor_execute", count)
    first = store.upsert_candles(candles)
    second = store.upsert_candles(candles)
    store.dispose()
    assert first.inserted == len(candles)
    assert second.unchanged == len(candles)
    assert len(statements) < 100, f"{len(statements)} statements for {2 * len(candles)} candle upserts"


def test_other_time_zones_are_stored_as_utc(store: PriceStore) -> None:
    berlin = CANDLES.assign(open_time=CANDLES["open_time"].dt.tz_convert("Europe/Berlin"))
    store.upsert_candles(berlin)
    assert store.upsert_candles(CANDLES).unchanged == 72  # the same hours, whatever zone they came in
    plus_two = timezone(timedelta(hours=2))
    frame = store.read_candles(
        start=datetime(2024, 1, 2, 2, tzinfo=plus_two), end=datetime(2024, 1, 2, 3, tzinfo=plus_two)
    )
    assert list(frame["open_time"]) == [pd.Timestamp("2024-01-02T00:00Z"), pd.Timestamp("2024-01-02T01:00Z")]


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda frame: frame.drop(columns="volume"), r"lack column\(s\) \['volume'\]"),
        (lambda frame: frame.assign(open_time=frame["open_time"].dt.tz_localize(None)), "must be tz-aware"),
        (lambda frame: pd.concat([frame, frame.iloc[[4]]]), "open_time repeats: 2024-01-01T04:00:00"),
        (lambda frame: frame.assign(close=frame["close"].where(frame.index != 3, np.nan)), "must be finite"),
    ],
    ids=["missing-column", "naive-time", "repeated-hour", "nan"],
)
def test_malformed_candles_are_refused_whole(
    store: PriceStore, mangle: Callable[[pd.DataFrame], pd.DataFrame], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        store.upsert_candles(mangle(CANDLES))
    assert store.candle_count() == 0


def test_read_range_is_inclusive_and_utc(store: PriceStore) -> None:
    store.upsert_candles(CANDLES)
    start = datetime(2024, 1, 2, 0, tzinfo=UTC)
    end = datetime(2024, 1, 2, 5, tzinfo=UTC)
    frame = store.read_candles(start=start, end=end)
    assert list(frame["open_time"]) == list(pd.date_range(start, end, freq="h"))
    assert str(frame["open_time"].dtype) == "datetime64[ns, UTC]"
    assert len(store.read_candles(start=end)) == 72 - 29
    assert len(store.read_candles(end=start)) == 25
    with pytest.raises(ValueError, match="no time zone"):
        store.read_candles(end=datetime(2024, 1, 2))


def test_an_empty_store_reads_an_empty_canonical_frame(store: PriceStore) -> None:
    frame = store.read_candles()
    assert frame.empty
    assert tuple(frame.columns) == CANDLE_COLUMNS
    assert [str(dtype) for dtype in frame.dtypes] == ["datetime64[ns, UTC]", *["float64"] * 5]


def test_a_bad_file_stores_nothing(store: PriceStore, tmp_path: Path) -> None:
    store.upsert_candles(CANDLES.iloc[:10])
    path = tmp_path / "mixed.csv"
    changed = CANDLES.assign(volume=CANDLES["volume"] + 1)  # would update the 10 and add 62
    write_project_csv(changed, str(path))
    lines = path.read_text().splitlines()
    cells = lines[-1].split(",")
    lines[-1] = ",".join([*cells[:4], "-5", *cells[5:]])  # the last row's close
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CandleFileError, match=r"mixed\.csv:73: field 'close'"):
        load_file_into_store(path, store)
    assert store.candle_count() == 10
    pd.testing.assert_frame_equal(store.read_candles(), CANDLES.iloc[:10])


def test_tables_and_columns(store: PriceStore, store_url: str) -> None:
    engine = create_engine(store_url)
    inspector = inspect(engine)
    assert {"candles", "contest_decisions"} <= set(inspector.get_table_names())
    assert [c["name"] for c in inspector.get_columns("candles")] == [*CANDLE_COLUMNS, "written_at"]
    assert inspector.get_pk_constraint("candles")["constrained_columns"] == ["open_time"]
    unique = inspector.get_unique_constraints("contest_decisions")
    assert [u["column_names"] for u in unique] == [["registered_model", "eval_start"]]
    engine.dispose()


def _decision(eval_start: datetime, promoted: bool = True, model: str = "m") -> DecisionRow:
    return DecisionRow(
        registered_model=model,
        eval_start=eval_start,
        eval_end=eval_start + timedelta(days=27, hours=23),
        champion_version=1,
        challenger_version=2,
        champion_mae=101.5,
        challenger_mae=99.25,
        naive_mae=103.0,
        metrics={"champion": {"mae": 101.5, "n": 672}, "challenger": {"mae": 99.25}, "naive": {"mae": 103.0}},
        promoted=promoted,
        reason="challenger wins",
        decided_at=datetime(2024, 3, 1, 0, 0, 59, 999_999, tzinfo=UTC),
    )


def test_decisions_are_recorded_once_per_shadow_month(store: PriceStore) -> None:
    february = _decision(datetime(2024, 2, 1, tzinfo=UTC))
    store.record_decision(february)
    store.record_decision(replace(february, decided_at=datetime.now(UTC)))  # a restart repeating itself
    store.record_decision(_decision(datetime(2024, 1, 1, tzinfo=UTC), promoted=False))
    store.record_decision(_decision(datetime(2024, 1, 1, tzinfo=UTC), model="other"))
    rows = store.list_decisions("m")
    assert [(row.eval_start, row.promoted) for row in rows] == [
        (datetime(2024, 1, 1, tzinfo=UTC), False),
        (datetime(2024, 2, 1, tzinfo=UTC), True),
    ]
    assert rows[1] == february  # exactly as recorded first, microseconds and all
    assert [(row.registered_model, row.eval_start.month) for row in store.list_decisions()] == [
        ("m", 1),
        ("other", 1),
        ("m", 2),
    ]
    assert store.list_decisions("nobody") == []


def test_a_conflicting_decision_is_refused(store: PriceStore) -> None:
    february = _decision(datetime(2024, 2, 1, tzinfo=UTC))
    store.record_decision(february)
    for conflicting in (
        replace(february, promoted=False),
        replace(february, challenger_mae=99.0),
        replace(february, metrics={"champion": {"mae": 1.0}}),
    ):
        with pytest.raises(DecisionConflictError, match="a different decision is already recorded for m"):
            store.record_decision(conflicting)
    assert store.list_decisions() == [february]


def test_decision_times_round_trip_as_utc(store: PriceStore) -> None:
    plus_two = timezone(timedelta(hours=2))
    local = replace(
        _decision(datetime(2024, 2, 1, 2, tzinfo=plus_two)),
        decided_at=datetime(2024, 3, 1, 2, 0, 0, 123_456, tzinfo=plus_two),
    )
    store.record_decision(local)
    (row,) = store.list_decisions()
    assert row.eval_start == datetime(2024, 2, 1, tzinfo=UTC)
    assert row.eval_start.tzinfo is UTC
    assert row.decided_at == datetime(2024, 3, 1, 0, 0, 0, 123_456, tzinfo=UTC)
    assert row == local  # equal instants


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"metrics": {"mae": float("nan")}}, ValueError, "metrics are not plain JSON"),
        ({"metrics": {"when": datetime(2024, 1, 1)}}, ValueError, "metrics are not plain JSON"),
        ({"eval_start": datetime(2024, 2, 1)}, ValueError, "no time zone"),
        ({"registered_model": "x" * 256}, ValueError, "longer than 255"),
    ],
    ids=["nan-metric", "unserialisable-metric", "naive-time", "long-name"],
)
def test_a_malformed_decision_is_refused(
    store: PriceStore, change: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        store.record_decision(replace(_decision(datetime(2024, 2, 1, tzinfo=UTC)), **change))
    assert store.list_decisions() == []


def test_candles_written_since_a_time_are_the_new_and_the_changed_ones(store: PriceStore) -> None:
    store.upsert_candles(CANDLES.iloc[:10])
    mark = datetime.now(UTC)
    time.sleep(0.01)
    corrected = CANDLES.iloc[3:12].copy()
    corrected.loc[corrected.index[0], "volume"] += 1.0  # hour 3 corrected, 4-9 the same, 10-11 new
    store.upsert_candles(corrected)

    written, newest = store.read_candles_written(mark)

    assert list(written["open_time"]) == [CANDLES["open_time"].iloc[n] for n in (3, 10, 11)]
    assert written["volume"].iloc[0] == corrected["volume"].iloc[0]
    assert newest is not None
    assert newest >= mark
    nothing, none = store.read_candles_written(newest + timedelta(seconds=1))
    assert nothing.empty
    assert none is None


def test_a_store_used_as_a_context_manager_is_disposed_however_the_block_ends(tmp_path: Path) -> None:
    disposed: list[str] = []
    with PriceStore(f"sqlite:///{tmp_path / 'a.db'}") as store:
        store.dispose = lambda: disposed.append("ok")  # type: ignore[method-assign]
        store.migrate()
        assert store.candle_count() == 0
    assert disposed == ["ok"]

    def fail_inside() -> None:
        with PriceStore(f"sqlite:///{tmp_path / 'b.db'}") as failing:
            failing.dispose = lambda: disposed.append("after an error")  # type: ignore[method-assign]
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_inside()
    assert disposed == ["ok", "after an error"]
