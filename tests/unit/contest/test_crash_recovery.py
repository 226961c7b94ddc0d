"""The crash matrix: a month close cut off at every step boundary, then restarted, ends where an
uninterrupted run ends.

A real ``Contest`` runs on a real embedded MLflow store (SQLite, local artifacts) and a real SQLite
price store. The failure is raised from the step hook, the seam every step boundary calls; a fresh
``Contest`` and ``ModelRegistry`` (a restarted process: nothing kept in memory) then closes the same
months. The same matrix runs as ``kill -9`` of a real trainer process against a real mlflow server
in ``tests/integration/test_trainer_crashes.py``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from btcmlops.contest import Month
from btcmlops.contest.contest import Contest
from btcmlops.registry import ModelRegistry, embedded_artifact_location, embedded_tracking_uri
from btcmlops.replay.run import FrameCandles
from btcmlops.settings import ContestSettings, ModelSettings
from btcmlops.store import PriceStore
from factories import make_candles
from registry_state import registry_state

# One xdist worker (make test) runs the module: the reference run and the months before the cut are made once.
pytestmark = pytest.mark.xdist_group("crash_recovery")

MODEL = ModelSettings(num_boost_round=15, min_data_in_leaf=20)
RULE = ContestSettings(first_train_months=2)
CANDLES = make_candles(
    "2021-01-01", "2021-05-31 23:00", ar=[("2021-01-01", -0.8), ("2021-03-01", 0.8)], noise=0.003
)
BEFORE = [Month(2021, 1), Month(2021, 2), Month(2021, 3)]
CUT = Month(2021, 4)  # a contest the challenger wins: every step of a promotion happens in it
AFTER = [Month(2021, 5)]
SERVED = [Month(2021, 3), CUT, *AFTER]
MATRIX = 19
"""Step boundaries an April close passes (a promotion and a new challenger); each is cut in turn."""


class InjectedCrashError(RuntimeError):
    """The injected failure."""


def _open(home: Path, cache: Path, hook: Callable[[str], None] | None = None) -> tuple[Contest, PriceStore]:
    registry = ModelRegistry(
        embedded_tracking_uri(home / "mlflow", cache),
        "crash-test",
        "crash-test-model",
        artifact_location=embedded_artifact_location(home / "mlflow"),
    )
    store = PriceStore(f"sqlite:///{home / 'prices.db'}")
    store.migrate()
    contest = Contest(
        MODEL, RULE, registry, FrameCandles(CANDLES), store, **({"on_step": hook} if hook else {})
    )
    return contest, store


@pytest.fixture(scope="module")
def before_cut(tmp_path_factory: pytest.TempPathFactory, mlflow_cache: Path) -> Path:
    """The stores after January to March, copied by each case (v1 champion, v2 in shadow)."""
    home = tmp_path_factory.mktemp("before-cut")
    contest, store = _open(home, mlflow_cache)
    for month in BEFORE:
        contest.close_month(month)
    store.dispose()
    return home


@pytest.fixture(scope="module")
def reference(
    before_cut: Path, tmp_path_factory: pytest.TempPathFactory, mlflow_cache: Path
) -> tuple[dict[str, Any], list[str]]:
    """The uninterrupted run from the same start, and every step boundary its April close passed."""
    home = tmp_path_factory.mktemp("reference")
    shutil.copytree(before_cut, home, dirs_exist_ok=True)
    steps: list[str] = []
    contest, store = _open(home, mlflow_cache, steps.append)
    contest.close_month(CUT)
    april_steps = list(steps)
    for month in AFTER:
        contest.close_month(month)
    state = registry_state(contest, store, SERVED)
    store.dispose()
    assert state["problems"] == []
    assert state["decisions"][0][3]  # April promotes: the richest close
    return state, april_steps


def test_the_april_close_passes_every_kind_of_step(reference: tuple[dict[str, Any], list[str]]) -> None:
    _, steps = reference
    for expected in (
        "plan",
        "journal.begun",
        "store.decision",
        "mlflow.contest_run",
        "registry.champion_alias",
        "registry.archived_status",
        "registry.challenger_alias_removed",
        "train",
        "register.run_created",
        "register.version_created",
        "registry.new_status",
        "journal.finish",
    ):
        assert expected in steps


SAMPLED = (0, MATRIX // 2, MATRIX - 1)
"""The boundaries ``make test-fast`` cuts (first, middle, last); the others are marked ``slow``."""


@pytest.mark.parametrize(
    "index", [i if i in SAMPLED else pytest.param(i, marks=pytest.mark.slow) for i in range(MATRIX)]
)
def test_a_close_cut_off_at_any_step_ends_as_an_uninterrupted_run(
    index: int,
    before_cut: Path,
    reference: tuple[dict[str, Any], list[str]],
    tmp_path: Path,
    mlflow_cache: Path,
) -> None:
    expected, steps = reference
    shutil.copytree(before_cut, tmp_path, dirs_exist_ok=True)
    seen = 0

    def crash_at_index(name: str) -> None:
        nonlocal seen
        if seen == index:
            raise InjectedCrashError(f"injected at step {index}: {name}")
        seen += 1

    crashed, store = _open(tmp_path, mlflow_cache, crash_at_index)
    with pytest.raises(InjectedCrashError):
        crashed.close_month(CUT)
    store.dispose()

    restarted, store = _open(tmp_path, mlflow_cache)  # a new process: nothing carried over in memory
    for month in [CUT, *AFTER]:
        restarted.close_month(month)
    state = registry_state(restarted, store, SERVED)
    store.dispose()
    assert state == expected, f"after a crash at {steps[index]}"


def test_a_contest_run_cut_off_between_its_mlflow_calls_is_finished_by_the_restart(
    before_cut: Path,
    reference: tuple[dict[str, Any], list[str]],
    tmp_path: Path,
    mlflow_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Inside a step: the contest run is created, then MLflow fails (or the process dies) before its
    params and metrics are logged. The restart must log them into that run, not take it as done."""
    expected, _ = reference
    shutil.copytree(before_cut, tmp_path, dirs_exist_ok=True)
    crashed, store = _open(tmp_path, mlflow_cache)

    def cut_off(*_args: object, **_kwargs: object) -> None:
        raise InjectedCrashError("cut off after the contest run was created")

    # The April close's first log_batch is its contest run's (the training run's comes after).
    monkeypatch.setattr(crashed._registry._client, "log_batch", cut_off)
    with pytest.raises(InjectedCrashError):
        crashed.close_month(CUT)
    store.dispose()
    assert [run.status for run in crashed._registry.contest_runs(str(CUT))] == ["RUNNING"]

    restarted, store = _open(tmp_path, mlflow_cache)
    for month in [CUT, *AFTER]:
        restarted.close_month(month)
    state = registry_state(restarted, store, SERVED)
    store.dispose()
    assert state == expected
    assert {run.status for run in restarted._registry.contest_runs()} == {"FINISHED"}


def test_the_matrix_covers_every_boundary(reference: tuple[dict[str, Any], list[str]]) -> None:
    _, steps = reference
    assert len(steps) == MATRIX, f"{len(steps)} step boundaries, {MATRIX} cut: make MATRIX {len(steps)}"
