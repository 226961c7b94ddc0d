"""Fixtures shared by every test: the price store on SQLite and on the machine's real MariaDB, the
session's small replays (one per set of inputs, each test on its own copy) and the run's one replay of
the shipped two years."""

from __future__ import annotations

import fcntl
import gc
import hashlib
import os
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from scheduling import DURATIONS_FILE, DurationRecorder, longest_first, planned, read_durations

if TYPE_CHECKING:
    from btcmlops.replay import ReplayResult
    from btcmlops.store import PriceStore
    from factories import OncePerRun, ReplayOf

# The project (MLflow among it: 5 s) is imported by the fixtures that use it, not here: pytest-xdist's
# controller loads this file before it starts a worker, and runs no test.

T = TypeVar("T")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--record-durations",
        action="store_true",
        help=f"write every test's seconds to {DURATIONS_FILE.name}: the order make test hands tests out",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("record_durations") and not os.environ.get("PYTEST_XDIST_WORKER"):
        config.pluginmanager.register(DurationRecorder(), "btcmlops-duration-recorder")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist, the longest tests start first, the many short unit tests fill in at the end:
    a minutes-long test handed out last would end the run minutes after every other worker
    (``tests/scheduling.py``)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        order = longest_first([planned(item) for item in items], read_durations())
        items[:] = [items[index] for index in order]


@pytest.fixture(autouse=True)
def _earlier_tests_frozen_out_of_the_collector() -> None:
    """Before each test, what the worker holds from earlier ones (imports, session servers' clients,
    caches: 0.6-1M objects late in a run) is frozen out of the cyclic collector, as ``btcmlops serve``
    freezes its imports: a full collection scanning it stalled a worker 1.0-2.4 s on the two loaded cores
    (164 such pauses in one ``make test``, seen with a ``gc.callbacks`` timer), which a service under test
    in the same process showed as its own latency (``/readyz`` 2.57 s against a 0.5 s store wait, a paced
    clock not moved within 2 s). The last test's cyclic garbage is collected first, so it is freed, not
    frozen; a test's own objects are collected as usual."""
    gc.collect()
    gc.freeze()


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One suite, two backends: an SQLite file, then a fresh database on the real MariaDB."""
    from services import mariadb_database

    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('store') / 'prices.db'}"
    else:
        yield from mariadb_database()


@pytest.fixture
def store(store_url: str) -> Iterator[PriceStore]:
    """A migrated price store on each backend."""
    from btcmlops.store import PriceStore

    price_store = PriceStore(store_url)
    price_store.migrate()
    yield price_store
    price_store.dispose()


def _run_folder(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A folder of this run that every pytest-xdist worker sees: under the parent of each worker's
    temporary folder (the run's), or under the temporary folder when there is one process."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name
    root.mkdir(exist_ok=True)
    return root


def _made_once(root: Path, key: str, make: Callable[[Path], T]) -> T:
    """``make(folder)``'s value for ``key``: made by the first worker to ask, in ``root/key``, under a
    file lock; the others wait on the lock, then read the value back from its pickle."""
    made = root / key
    with (root / f"{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (made / "result.pickle").exists():
            made.mkdir(exist_ok=True)
            (made / "result.pickle").write_bytes(pickle.dumps(make(made)))
        value: T = pickle.loads((made / "result.pickle").read_bytes())
    return value


@pytest.fixture(scope="session")
def mlflow_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run's cache of the migrated empty MLflow database (``embedded_tracking_uri``'s ``cache_dir``),
    built once for all xdist workers, so each test's embedded store costs a file copy (and each replay's,
    through ``share_mlflow_template``)."""
    from btcmlops.registry import embedded_tracking_uri

    cache = _run_folder(tmp_path_factory, "mlflow-cache")
    once = _run_folder(tmp_path_factory, "once")
    _made_once(once, "mlflow-template", lambda folder: embedded_tracking_uri(folder, cache))
    return cache


@pytest.fixture(scope="session")
def replay_of(tmp_path_factory: pytest.TempPathFactory, mlflow_cache: Path) -> ReplayOf:
    """``replay_of(home, start, end, num_boost_round=20, **candles)``: a copy under ``home`` (see
    ``copy_replay``) of the run's ``small_replay`` of ``make_candles(start, end, **candles)``.

    A replay trains a model per month (seconds each); the tests that start from one replay the same
    inputs, so a run makes each set of inputs once and hands every caller its own copy of the stores to
    change. Under pytest-xdist the workers share the replays: the first to need one makes it in the
    run's temporary folder (the parent of each worker's) under a file lock, the others read it there.
    """
    from factories import copy_replay, make_candles, small_replay

    root = _run_folder(tmp_path_factory, "replays")

    def replay_of(
        home: Path, start: str, end: str, *, num_boost_round: int = 20, **candles: Any
    ) -> ReplayResult:
        key = repr((start, end, num_boost_round, sorted(candles.items())))

        def make(made: Path) -> ReplayResult:
            frame = make_candles(start, end, **candles)
            return small_replay(made, frame, num_boost_round=num_boost_round, mlflow_cache=mlflow_cache)

        replay = _made_once(root, hashlib.sha256(key.encode()).hexdigest()[:16], make)
        return copy_replay(replay, home)

    return replay_of


@pytest.fixture(scope="session")
def once_per_run(tmp_path_factory: pytest.TempPathFactory) -> OncePerRun:
    """``once_per_run(key, make)``: ``make(folder)``'s value, made once per run for all xdist workers.

    For a costly fixture whose value is plain data that the tests only compare against (a reference
    run's outcome), not a store or server they use: without it, each worker that gets one of the
    module's tests makes it again. The first worker to ask makes it (``folder`` is its own, in the run's
    temporary folder) while the others wait on a file lock; they read the pickled value.
    """
    root = _run_folder(tmp_path_factory, "once")

    def once_per_run(key: str, make: Callable[[Path], T]) -> T:
        return _made_once(root, key, make)

    return once_per_run


@pytest.fixture(scope="session")
def shipped_replay(tmp_path_factory: pytest.TempPathFactory, mlflow_cache: Path) -> ReplayResult:
    """The replay of the shipped two years with the default settings (``make demo``), made once per run
    for all xdist workers, to be read only: ``tests/unit/replay/test_replay.py`` checks it, and the live
    stack test takes February to April 2024's decisions and forecasts from it (a replay decides and
    forecasts each hour from the hours before it, so the later months change none of them)."""
    from btcmlops.replay import run_replay
    from btcmlops.settings import EMBEDDED_DATA_FILE, Settings
    from factories import share_mlflow_template

    def make(folder: Path) -> ReplayResult:
        home = share_mlflow_template(folder / "home", mlflow_cache)
        return run_replay(Settings(home=home), EMBEDDED_DATA_FILE, home / "out")

    return _made_once(_run_folder(tmp_path_factory, "once"), "shipped-replay", make)
