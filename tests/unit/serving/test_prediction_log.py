"""The prediction log's write-ahead files: nothing answered is lost by a crash, nothing is logged twice.

A crash is a writer abandoned without ``stop()`` whose files are closed as the kernel closes a killed
process's files (its locks go with them), and once a real process killed with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from btcmlops.serving.metrics import ServiceMetrics
from btcmlops.serving.prediction_log import PredictionLogWriter, wal_directory
from btcmlops.store import LoggedPrediction, PriceStore

T0 = datetime(2024, 3, 1, tzinfo=UTC)
NEVER = 3600.0
"""A flush interval no test waits for: the tests flush by hand."""


class FlakyStore(PriceStore):
    """A price store whose prediction log writes fail while ``down``."""

    down = False

    def log_predictions(self, rows: list[LoggedPrediction]) -> None:
        if self.down:
            raise ConnectionError("store down")
        super().log_predictions(rows)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FlakyStore]:
    price_store = FlakyStore(f"sqlite:///{tmp_path / 'prices.db'}")
    price_store.migrate()
    yield price_store
    price_store.dispose()


@pytest.fixture
def wal(tmp_path: Path) -> Path:
    return tmp_path / "wal"


def _forecast(number: int) -> LoggedPrediction:
    hour = T0 + timedelta(hours=number)
    return LoggedPrediction(
        hour, hour + timedelta(hours=1), 60_000.25 + number, 60_000.0, 2, hour, hour,
        interval_level=0.8, lower_close=59_700.125 + number, upper_close=60_310.875 + number,
    )  # fmt: skip


def _writer(store: PriceStore, wal: Path, **options: int) -> PredictionLogWriter:
    writer = PredictionLogWriter(store, NEVER, wal_dir=wal, **options)  # type: ignore[arg-type]
    writer.start()
    return writer


def _die(writer: PredictionLogWriter) -> None:
    """What the kernel does to a killed process's files: closed, unlocked, left where they are."""
    for segment in [*writer._sealed, *([writer._current] if writer._current else [])]:
        os.close(segment.fd)
    writer._sealed, writer._current = [], None


def _lines(wal: Path) -> int:
    return sum(len(path.read_bytes().splitlines()) for path in wal.glob("*.wal"))


def _logged(store: PriceStore) -> list[LoggedPrediction]:
    return store.read_predictions(limit=1_000_000)


def test_every_append_is_in_the_file_before_it_returns_and_a_written_batch_leaves_it(
    store: FlakyStore, wal: Path
) -> None:
    writer = _writer(store, wal)
    for number in range(20):
        writer.append(_forecast(number))
        assert _lines(wal) == number + 1
    assert writer.backlog == 20
    assert writer.wal_bytes == sum(path.stat().st_size for path in wal.glob("*.wal")) > 0
    assert writer.flush()
    assert (writer.backlog, writer.written, writer.wal_bytes, _lines(wal)) == (0, 20, 0, 0)
    assert len(list(wal.glob("*.wal"))) == 1  # the open (empty) segment only
    writer.stop()
    assert list(wal.iterdir()) == []
    logged = _logged(store)
    assert [row.predicted_close for row in logged] == [_forecast(n).predicted_close for n in range(20)]
    assert len({row.entry_id for row in logged}) == 20


def test_a_crashed_writers_rows_are_replayed_once_by_the_next_writer(store: FlakyStore, wal: Path) -> None:
    crashed = _writer(store, wal)
    for number in range(30):
        crashed.append(_forecast(number))
    assert crashed.flush()  # 30 written; then 20 more answered and the process dies
    for number in range(30, 50):
        crashed.append(_forecast(number))
    _die(crashed)

    restarted = _writer(store, wal)
    assert (restarted.replayed, restarted.backlog) == (20, 20)
    restarted.stop()
    assert list(wal.iterdir()) == []
    third = _writer(store, wal)
    assert third.replayed == 0  # replayed exactly once
    third.stop()
    logged = _logged(store)
    assert len(logged) == 50
    assert len({row.entry_id for row in logged}) == 50
    assert sorted(row.predicted_close for row in logged) == [_forecast(n).predicted_close for n in range(50)]
    assert sorted((row.interval_level, row.lower_close, row.upper_close) for row in logged) == [
        (0.8, _forecast(n).lower_close, _forecast(n).upper_close) for n in range(50)
    ]


def test_a_file_of_the_format_before_intervals_is_still_replayed(store: FlakyStore, wal: Path) -> None:
    """A process of the previous release died leaving format-1 lines (no interval): they are logged
    as they were, the interval unknown; a line of no known format is counted unreadable."""
    wal.mkdir()
    hour = 1_709_251_200_000_000  # 2024-03-01T00:00Z in microseconds
    old = [
        f'[1,"old{n}",{hour + n * 3_600_000_000},{hour + (n + 1) * 3_600_000_000},60000.5,60000.0,2,'
        f"{hour},null]"
        for n in range(3)
    ]
    (wal / "host-1-token-000001.wal").write_text("\n".join([*old, '[9,"x",1,2]']) + "\n")
    writer = _writer(store, wal)
    assert (writer.replayed, writer.unreadable) == (3, 1)
    writer.stop()
    logged = _logged(store)
    assert [row.entry_id for row in logged] == ["old0", "old1", "old2"]
    assert {(row.interval_level, row.lower_close, row.upper_close) for row in logged} == {(None, None, None)}
    assert logged[0].timestamp == T0


def test_a_crash_after_the_commit_but_before_the_file_is_deleted_replays_as_no_ops(
    store: FlakyStore, wal: Path
) -> None:
    crashed = _writer(store, wal)
    for number in range(25):
        crashed.append(_forecast(number))
    kept = {path.name: path.read_bytes() for path in wal.glob("*.wal")}
    assert crashed.flush()  # committed; the crash is as if the file had not been deleted yet
    _die(crashed)
    for name, data in kept.items():
        (wal / name).write_bytes(data)

    restarted = _writer(store, wal)
    assert restarted.replayed == 25
    restarted.stop()
    assert restarted.written == 25  # written again, and ignored by the store
    assert len(_logged(store)) == 25


def test_a_live_writers_files_are_left_alone(store: FlakyStore, wal: Path) -> None:
    first = _writer(store, wal)
    for number in range(5):
        first.append(_forecast(number))
    second = _writer(store, wal)  # another replica on the same host and directory
    assert second.replayed == 0
    second.stop()
    first.stop()
    assert len(_logged(store)) == 5
    assert list(wal.iterdir()) == []


def test_during_an_outage_rows_wait_in_memory_and_in_the_file_then_go_once(
    store: FlakyStore, wal: Path
) -> None:
    writer = _writer(store, wal)
    store.down = True
    for number in range(10):
        writer.append(_forecast(number))
    assert not writer.flush()
    for number in range(10, 15):
        writer.append(_forecast(number))
    assert not writer.flush()  # retries the first batch only: no new file per try
    assert writer.last_error == "ConnectionError: store down"
    assert (writer.backlog, _lines(wal), len(list(wal.glob("*.wal")))) == (15, 15, 2)
    store.down = False
    assert writer.flush()
    assert writer.flush()
    assert (writer.backlog, writer.written, writer.wal_bytes, writer.last_error) == (0, 15, 0, None)
    writer.stop()
    assert len(_logged(store)) == 15


def test_stop_with_the_store_down_leaves_the_files_for_the_next_start(store: FlakyStore, wal: Path) -> None:
    writer = _writer(store, wal)
    for number in range(12):
        writer.append(_forecast(number))
    store.down = True
    writer.stop()
    assert _lines(wal) == 12
    store.down = False
    restarted = _writer(store, wal)
    assert restarted.replayed == 12
    restarted.stop()
    assert len(_logged(store)) == 12
    assert list(wal.iterdir()) == []


def test_beyond_the_backlog_bound_new_forecasts_are_counted_as_dropped(store: FlakyStore, wal: Path) -> None:
    store.down = True
    writer = _writer(store, wal, max_backlog=5)
    for number in range(8):
        writer.append(_forecast(number))
    assert (writer.backlog, writer.dropped, _lines(wal)) == (5, 3, 5)
    metrics = ServiceMetrics(lambda: 0.0)
    metrics.watch_prediction_log(writer)
    text = generate_latest(metrics.registry).decode()
    assert "btcmlops_prediction_log_backlog 5.0" in text
    assert "btcmlops_prediction_log_dropped_total 3.0" in text
    assert "btcmlops_prediction_log_written_total 0.0" in text
    assert f"btcmlops_prediction_log_wal_bytes {float(writer.wal_bytes)}" in text
    store.down = False
    writer.stop()
    text = generate_latest(metrics.registry).decode()
    assert "btcmlops_prediction_log_written_total 5.0" in text
    assert "btcmlops_prediction_log_backlog 0.0" in text


def test_a_torn_last_line_is_skipped_and_counted(store: FlakyStore, wal: Path) -> None:
    crashed = _writer(store, wal)
    for number in range(3):
        crashed.append(_forecast(number))
    path = crashed.wal_files[-1]
    _die(crashed)
    with path.open("ab") as file:
        file.write(b'[1,"abc","2024-03-01T0')  # a machine crash mid-line
    restarted = _writer(store, wal)
    assert (restarted.replayed, restarted.unreadable) == (3, 1)
    restarted.stop()
    assert len(_logged(store)) == 3


def test_each_store_has_its_own_directory(tmp_path: Path) -> None:
    one = wal_directory(tmp_path, "mysql+pymysql://u:secret@db/prices")
    assert one == wal_directory(tmp_path, "mysql+pymysql://u:other@db/prices")  # the password is no key
    assert one != wal_directory(tmp_path, "mysql+pymysql://u:secret@db/other")
    assert one.parent == tmp_path


def test_an_unwritable_directory_leaves_the_log_in_memory(store: FlakyStore, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    writer = _writer(store, blocker / "wal")
    assert writer.wal_error is not None
    writer.append(_forecast(0))
    writer.stop()
    assert len(_logged(store)) == 1


def test_forecasts_answered_before_kill_9_are_all_logged_after_a_restart(
    store: FlakyStore, wal: Path
) -> None:
    """A real process appends, says how many, and is killed with SIGKILL before any flush."""
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from datetime import UTC, datetime, timedelta
        from btcmlops.serving.prediction_log import PredictionLogWriter
        from btcmlops.store import LoggedPrediction, PriceStore
        writer = PredictionLogWriter(PriceStore({store.url!r}), 3600, wal_dir=Path({str(wal)!r}))
        writer.start()
        t0 = datetime(2024, 3, 1, tzinfo=UTC)
        for n in range(500):
            hour = t0 + timedelta(hours=n)
            writer.append(LoggedPrediction(hour, hour + timedelta(hours=1), 1.0 + n, 1.0, 2, hour, hour))
        print("appended", flush=True)
        time.sleep(600)
        """
    )
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == b"appended"
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
    restarted = _writer(store, wal)
    assert restarted.replayed == 500
    restarted.stop()
    logged = _logged(store)
    assert sorted(row.predicted_close for row in logged) == [1.0 + n for n in range(500)]
    assert list(wal.iterdir()) == []


def test_a_record_reads_back_exactly_even_when_a_number_is_not_finite() -> None:
    from btcmlops.serving.prediction_log import _decode, _encode

    for close in (60_123.456789012345, float("nan"), float("inf"), 1e-300):
        row = replace(_forecast(3), predicted_close=close, sim_made_at=None, lower_close=close)
        back = _decode(_encode("id1", row))
        assert back.entry_id == "id1"
        assert replace(back, entry_id=None, predicted_close=0.0, lower_close=0.0) == replace(
            row, predicted_close=0.0, lower_close=0.0
        )
        assert repr(back.predicted_close) == repr(close)
        assert repr(back.lower_close) == repr(close)
    no_interval = replace(_forecast(4), interval_level=None, lower_close=None, upper_close=None)
    assert replace(_decode(_encode("id2", no_interval)), entry_id=None) == no_interval


def test_with_fsync_on_the_files_behave_the_same(store: FlakyStore, wal: Path) -> None:
    writer = PredictionLogWriter(store, 0.05, wal_dir=wal, fsync=True)
    writer.start()
    store.down = True
    for number in range(7):
        writer.append(_forecast(number))
    assert _lines(wal) == 7
    store.down = False
    writer.stop()
    assert (writer.written, len(_logged(store)), list(wal.iterdir())) == (7, 7, [])
