"""Writes served forecasts to the store in batches, on its own thread, never on the request path.

Every forecast is first appended to a local write-ahead file (one JSON line, one ``os.write``), so
``kill -9`` loses nothing once ``append`` has returned: the kernel has the bytes. Only a machine crash
can lose what the page cache had not written back (with ``fsync`` on: at most the last flush interval).

Files. Each process writes its own segments, ``<host>-<pid>-<token>-<n>.wal``, in one directory per
store, and holds an exclusive ``flock`` on each until its rows are in the store. At every flush the
segment being written is sealed and a new one begun; once the sealed segment's rows are committed it is
deleted, so while the store is up the files hold about one flush interval of forecasts. While the store
is down the sealed batch is retried and new rows go on into the one open segment. A process that dies
(even by ``kill -9``) drops its locks with it: the next writer started on the directory takes each
unlocked file, writes its rows first and deletes it. Every row carries a unique ``entry_id`` that the
store inserts once, so rows committed just before a crash (file not yet deleted) replay as no-ops.

Memory is bounded: past ``max_backlog`` rows waiting for the store, new forecasts are answered but
neither kept nor written to the file; they are counted in ``dropped``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import json
import logging
import math
import os
import re
import socket
import threading
import uuid
from collections import deque
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import make_url

from btcmlops.store import LoggedPrediction, PriceStore

logger = logging.getLogger(__name__)

WAL_SUFFIX = ".wal"
_FORMAT = 2
"""First field of every record: the record layout. 2 adds the interval (level, lower, upper) to 1's
fields; files of format 1 left by an older process are still replayed (their rows without an interval)."""
_FIELDS = {1: 9, 2: 12}
"""Fields of a record, by format."""
_STOP_JOIN_S = 10.0


def wal_directory(base: Path, store_url: str) -> Path:
    """The write-ahead files' directory for one store: a file is only ever replayed into its own store."""
    shown = make_url(store_url).render_as_string(hide_password=True)
    return base / hashlib.sha256(shown.encode()).hexdigest()[:16]


@dataclass
class _Segment:
    path: Path
    fd: int
    size: int


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(moment: datetime) -> int:
    """Microseconds since the epoch: exact, and a fifth of ``isoformat``'s cost on the request path."""
    return (moment - _EPOCH) // _MICROSECOND


def _moment(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _number(value: float | None) -> str:
    return "null" if value is None else repr(value)


def _encode(entry_id: str, row: LoggedPrediction) -> bytes:
    """One JSON line: ``[format, id, timestamp, target, predicted, last close, version, served at, sim
    made at, interval level, lower close, upper close]``, times in microseconds since the epoch; built by
    hand when the numbers are finite."""
    sim = "null" if row.sim_made_at is None else str(_micros(row.sim_made_at))
    numbers = (row.predicted_close, row.last_close, row.interval_level, row.lower_close, row.upper_close)
    if all(value is None or math.isfinite(value) for value in numbers):
        return (
            f'[{_FORMAT},"{entry_id}",{_micros(row.timestamp)},{_micros(row.target_time)},'
            f"{row.predicted_close!r},{row.last_close!r},{int(row.model_version)},"
            f"{_micros(row.served_at)},{sim},{_number(row.interval_level)},{_number(row.lower_close)},"
            f"{_number(row.upper_close)}]\n"
        ).encode()
    record = [_FORMAT, entry_id, _micros(row.timestamp), _micros(row.target_time), row.predicted_close]
    record += [row.last_close, int(row.model_version), _micros(row.served_at), json.loads(sim)]
    record += [row.interval_level, row.lower_close, row.upper_close]
    return (json.dumps(record, separators=(",", ":")) + "\n").encode()  # NaN and Infinity as JSON can't


def _optional(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _decode(line: bytes) -> LoggedPrediction:
    """A record of any format this service ever wrote (format 1: a row without an interval)."""
    record = json.loads(line)
    if not isinstance(record, list) or not record or _FIELDS.get(record[0]) != len(record):
        raise ValueError(f"not a prediction log record of format {' or '.join(map(str, _FIELDS))}")
    _, entry_id, timestamp, target, predicted, last_close, version, served_at, sim = record[:9]
    level, lower, upper = record[9:] if len(record) > 9 else (None, None, None)
    if not isinstance(entry_id, str):
        raise ValueError("a prediction log record without its entry id")
    return LoggedPrediction(
        timestamp=_moment(timestamp),
        target_time=_moment(target),
        predicted_close=float(predicted),
        last_close=float(last_close),
        model_version=int(version),
        served_at=_moment(served_at),
        sim_made_at=None if sim is None else _moment(sim),
        entry_id=entry_id,
        interval_level=_optional(level),
        lower_close=_optional(lower),
        upper_close=_optional(upper),
    )


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PredictionLogWriter:
    """Keeps answered forecasts in memory and in a write-ahead file until a batch is in the store.

    ``append`` costs one JSON encoding and one ``write`` (a few microseconds); the store is written by a
    thread every ``interval_s``. Without ``wal_dir`` the forecasts are kept in memory only.
    """

    def __init__(
        self,
        store: PriceStore,
        interval_s: float,
        *,
        wal_dir: Path | None = None,
        max_backlog: int = 100_000,
        fsync: bool = False,
    ) -> None:
        self._store = store
        self._interval_s = interval_s
        self._wal_dir = wal_dir
        self._max_backlog = max_backlog
        self._fsync = fsync
        self._lock = threading.Lock()
        """Guards the rows and the segments between ``append`` (request path) and the flushes."""
        self._flush_lock = threading.Lock()
        self._pending: deque[tuple[str, LoggedPrediction]] = deque()
        """Rows (with the id they will be logged under) appended since the last batch was taken."""
        self._inflight: list[tuple[str, LoggedPrediction]] = []
        """The batch being written, or retried after a failure; its rows are in ``_sealed``'s files."""
        self._current: _Segment | None = None
        self._sealed: list[_Segment] = []
        token = uuid.uuid4().hex[:16]
        self._ids = (f"{token}{number:x}" for number in itertools.count())
        host = re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname())[:64]
        self._name = f"{host}-{os.getpid()}-{token}"
        self._segments = itertools.count(1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self.written = 0
        """Rows the store accepted (a replayed row the store already had counts too)."""
        self.dropped = 0
        """Forecasts answered but not logged: the backlog was full."""
        self.replayed = 0
        """Rows taken over at start from the files of a process that died."""
        self.unreadable = 0
        """Lines of such files that could not be read (a line torn by a machine crash)."""
        self.last_error: str | None = None
        self.wal_error: str | None = None

    # -- what /metrics shows ------------------------------------------------------------------------
    @property
    def backlog(self) -> int:
        """Rows waiting for the store (in memory and in the write-ahead files)."""
        return len(self._pending) + len(self._inflight)

    @property
    def wal_bytes(self) -> int:
        """Bytes in this process's write-ahead files (taken-over files included)."""
        with self._lock:
            segments = [*self._sealed, *([self._current] if self._current is not None else [])]
            return sum(segment.size for segment in segments)

    @property
    def wal_files(self) -> list[Path]:
        """The write-ahead files this writer holds (sealed first, then the open one)."""
        with self._lock:
            segments = [*self._sealed, *([self._current] if self._current is not None else [])]
            return [segment.path for segment in segments]

    # -- life -----------------------------------------------------------------------------------------
    def start(self) -> None:
        """Take over the files of dead processes, open this process's file and start flushing."""
        if self._wal_dir is not None:
            try:
                self._open_wal(self._wal_dir)
            except OSError as error:
                self.wal_error = f"{error.__class__.__name__}: {error}"
                logger.error(
                    "prediction log: no write-ahead file in %s (%s): forecasts are kept in memory only "
                    "until written, and a crash loses them",
                    self._wal_dir,
                    self.wal_error,
                )
        self._thread.start()

    def stop(self) -> None:
        """Write everything to the store, then delete the files; the store down: leave them for the next
        start (they are replayed then)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=_STOP_JOIN_S)
        if self._thread.is_alive():  # a write hangs: the files hold every row, the next start has them
            logger.warning("prediction log: a store write hangs; %d rows left in the files", self.backlog)
            return  # the thread still owns the files; they close (and unlock) as the process ends
        for _ in range(3):  # the batch retried, then what came after it
            if not self.backlog or not self.flush():
                break
        with self._lock:
            segments = [*self._sealed, *([self._current] if self._current is not None else [])]
            empty = not self._pending and not self._inflight
            self._current = None
            self._sealed = []
        for segment in segments:
            if empty:
                with contextlib.suppress(FileNotFoundError):
                    segment.path.unlink()
            os.close(segment.fd)  # releases the lock: a file left now is the next start's to replay
        if not empty:
            logger.warning(
                "prediction log: %d rows not written (%s); %s",
                self.backlog,
                self.last_error,
                "lost (no write-ahead file)"
                if not segments
                else f"left in {self._wal_dir} for the next start to write",
            )

    # -- the request path -----------------------------------------------------------------------------
    def append(self, prediction: LoggedPrediction) -> None:
        """Keep one answered forecast: in memory and, before returning, in the write-ahead file."""
        with self._lock:
            if len(self._pending) + len(self._inflight) >= self._max_backlog:
                self.dropped += 1
                return
            entry_id = next(self._ids)
            if self._current is not None:
                line = _encode(entry_id, prediction)
                try:
                    _write_all(self._current.fd, line)
                except OSError as error:  # a full disk: keep serving, log from memory
                    self._wal_failed(error)
                else:
                    self._current.size += len(line)
            self._pending.append((entry_id, prediction))

    # -- the flush thread -----------------------------------------------------------------------------
    def flush(self) -> bool:
        """Write one batch: the one that failed last time, else everything pending.

        Returns True when the store took the batch (or there was none); on failure the batch is kept,
        in memory and in its file, for the next try (the store may be back).
        """
        with self._flush_lock:
            with self._lock:
                if not self._inflight:
                    if not self._pending:
                        return True
                    self._inflight = list(self._pending)
                    self._pending.clear()
                    self._seal()
                batch = self._inflight
                sealed = list(self._sealed)
            if self._fsync:
                self._sync(sealed)
            try:
                self._store.log_predictions([replace(row, entry_id=entry_id) for entry_id, row in batch])
            except Exception as error:  # the database is down: serve on, retry later
                first_line = next(iter(str(error).splitlines()), "")[:300]  # not the SQL and its rows
                self.last_error = f"{error.__class__.__name__}: {first_line}"
                logger.warning("prediction log: %d forecasts kept for retry: %s", len(batch), self.last_error)
                return False
            with self._lock:
                self._inflight = []
                done = {id(segment) for segment in sealed}
                self._sealed = [segment for segment in self._sealed if id(segment) not in done]
                self.written += len(batch)
            for segment in sealed:  # unlink first: whoever locks it after sees it gone (st_nlink 0)
                with contextlib.suppress(FileNotFoundError):
                    segment.path.unlink()
                os.close(segment.fd)
            self.last_error = None
            return True

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.flush()
                if self._fsync:
                    with self._lock:
                        current = self._current
                    if current is not None:
                        self._sync([current])
            except Exception:  # never end the thread: the files keep the rows, the next try may work
                logger.exception("prediction log: flush failed")

    # -- files ----------------------------------------------------------------------------------------
    def _open_wal(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        taken, rows = self._take_over(directory)
        segment = self._new_segment(directory)
        with self._lock:
            self._current = segment
            self._sealed.extend(taken)
            seen = {entry_id for entry_id, _ in self._inflight}
            self._inflight.extend(row for row in rows if row[0] not in seen)
            for entry_id, row in self._pending:  # appended before start (not in a file yet)
                line = _encode(entry_id, row)
                _write_all(segment.fd, line)
                segment.size += len(line)
        if taken:
            logger.warning(
                "prediction log: %d forecasts taken over from %d file(s) of a process that ended "
                "without writing them (%d unreadable lines)",
                len(rows),
                len(taken),
                self.unreadable,
            )

    def _take_over(self, directory: Path) -> tuple[list[_Segment], list[tuple[str, LoggedPrediction]]]:
        """Lock and read every file whose process is gone (its lock went with it)."""
        taken: list[_Segment] = []
        rows: dict[str, LoggedPrediction] = {}
        for path in sorted(directory.glob(f"*{WAL_SUFFIX}")):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:  # written and deleted meanwhile
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # a live process's file
                os.close(fd)
                continue
            status = os.fstat(fd)
            if status.st_nlink == 0:  # its rows were written and the file deleted as we opened it
                os.close(fd)
                continue
            data = os.pread(fd, status.st_size, 0)
            for line in data.split(b"\n"):
                if not line.strip():
                    continue
                try:
                    row = _decode(line)
                except (ValueError, TypeError, KeyError):
                    self.unreadable += 1
                    continue
                assert row.entry_id is not None
                rows.setdefault(row.entry_id, row)
            taken.append(_Segment(path, fd, status.st_size))
        self.replayed += len(rows)
        return taken, list(rows.items())

    def _new_segment(self, directory: Path) -> _Segment:
        """A new file of this process, locked before it carries the name other processes look for."""
        path = directory / f"{self._name}-{next(self._segments):06d}{WAL_SUFFIX}"
        hidden = path.with_suffix(".new")
        fd = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            hidden.rename(path)
            if self._fsync:
                _fsync_dir(directory)
        except OSError:
            os.close(fd)
            raise
        return _Segment(path, fd, 0)

    def _seal(self) -> None:
        """Close the open segment to appends (its rows are the batch) and begin the next one."""
        if self._current is None or self._wal_dir is None:
            return
        self._sealed.append(self._current)
        self._current = None
        try:
            self._current = self._new_segment(self._wal_dir)
        except OSError as error:
            self._wal_failed(error)

    def _wal_failed(self, error: OSError) -> None:
        if self.wal_error is None:
            logger.error("prediction log: write-ahead file failed, keeping forecasts in memory: %s", error)
        self.wal_error = f"{error.__class__.__name__}: {error}"

    @staticmethod
    def _sync(segments: list[_Segment]) -> None:
        for segment in segments:
            with contextlib.suppress(OSError):
                os.fsync(segment.fd)
