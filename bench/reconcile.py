"""Benchmark: how long a reconcile takes, on the shipped data and the embedded stores.

Closes 2023-01 to 2024-02 on the shipped candles (v1, the challenger v2, February's contest), then cuts
the close of 2024-03 (March promotes v3) off at chosen step boundaries, and times ``reconcile`` in a
new ``Contest`` (a restarted process holds nothing in memory): with nothing pending, after a cut
before training (reconcile trains the next challenger itself) and after a cut once the challenger is
registered (registry steps only). Also times ``registry check`` (``ChampionChanges.problems``).

    uv run python bench/reconcile.py
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from btcmlops.calendar import Month, months_between
from btcmlops.contest.contest import Contest
from btcmlops.data import read_candle_file
from btcmlops.registry import ModelRegistry, embedded_artifact_location, embedded_tracking_uri
from btcmlops.replay.run import FrameCandles
from btcmlops.settings import Settings
from btcmlops.store import PriceStore

CUTS = ("mlflow.contest_run", "registry.champion_alias", "train", "registry.new_status")


class CutError(RuntimeError):
    """The injected cut."""


def _open(home: Path, cache: Path, hook: Callable[[str], None] | None = None) -> tuple[Contest, PriceStore]:
    settings = Settings(home=home)
    registry = ModelRegistry(
        embedded_tracking_uri(home / "mlflow", cache),
        settings.mlflow.experiment,
        settings.mlflow.registered_model,
        artifact_location=embedded_artifact_location(home / "mlflow"),
    )
    store = PriceStore(f"sqlite:///{home / 'prices.db'}")
    store.migrate()
    candles = FrameCandles(read_candle_file(settings.data.file).candles)
    extra = {"on_step": hook} if hook else {}
    return Contest(settings.model, settings.contest, registry, candles, store, **extra), store


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-reconcile-"))
    cache = root / "cache"
    base = root / "base"
    contest, store = _open(base, cache)
    for month in months_between(Month(2023, 1), Month(2024, 2)):
        contest.close_month(month)
    store.dispose()
    print("reconcile and check on the shipped data (embedded SQLite stores); seconds")
    idle, store = _open(base, cache)
    print(f"  nothing pending:                  reconcile {_timed(idle.reconcile):6.2f}")
    print(f"  registry check (problems()):      {_timed(idle.changes.problems):6.2f}")
    store.dispose()
    for cut in CUTS:
        home = root / cut
        shutil.copytree(base, home)

        def crash(name: str, at: str = cut) -> None:
            if name == at:
                raise CutError(name)

        crashed, store = _open(home, cache, crash)
        with contextlib.suppress(CutError):
            crashed.close_month(Month(2024, 3))
        store.dispose()
        restarted, store = _open(home, cache)
        seconds = _timed(restarted.reconcile)
        problems = restarted.changes.problems()
        store.dispose()
        print(f"  cut at {cut:<26} reconcile {seconds:6.2f}  problems after: {len(problems)}")
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
