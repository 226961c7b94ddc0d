"""Champion changes outside a month close: by hand, from outside, mixed tenure, short months.

Real ``Contest`` on a real embedded MLflow store and a real SQLite price store, on a market whose
regime flips on March 1st so that April's challenger (v2) wins and is promoted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from btcmlops.contest import Month
from btcmlops.contest.changes import REPAIR_CLAIM, ChampionChanges, ChangeRefusedError, no_step
from btcmlops.contest.contest import Contest
from btcmlops.registry import (
    CHALLENGER,
    CHAMPION,
    ModelRegistry,
    embedded_artifact_location,
    embedded_tracking_uri,
)
from btcmlops.replay.run import FrameCandles
from btcmlops.settings import ContestSettings, ModelSettings
from btcmlops.store import PriceStore
from factories import make_candles, small_replay

MODEL = ModelSettings(num_boost_round=15, min_data_in_leaf=20)
RULE = ContestSettings(first_train_months=2)
NAME = "changes-test-model"
CANDLES = make_candles(
    "2021-01-01", "2021-05-31 23:00", ar=[("2021-01-01", -0.8), ("2021-03-01", 0.8)], noise=0.003
)


class Sim:
    """A settable sim clock for the changes made 'now'."""

    def __init__(self) -> None:
        self.now: datetime | None = None

    def __call__(self) -> datetime | None:
        return self.now


@pytest.fixture
def sim() -> Sim:
    return Sim()


def _open(
    home: Path, cache: Path, candles: pd.DataFrame, sim: Sim
) -> tuple[Contest, ModelRegistry, PriceStore]:
    registry = ModelRegistry(
        embedded_tracking_uri(home / "mlflow", cache),
        "changes-test",
        NAME,
        artifact_location=embedded_artifact_location(home / "mlflow"),
    )
    store = PriceStore(f"sqlite:///{home / 'prices.db'}")
    store.migrate()
    return Contest(MODEL, RULE, registry, FrameCandles(candles), store, sim_now=sim), registry, store


@pytest.fixture
def world(
    tmp_path: Path, mlflow_cache: Path, sim: Sim
) -> Iterator[tuple[Contest, ModelRegistry, PriceStore]]:
    opened = _open(tmp_path, mlflow_cache, CANDLES, sim)
    yield opened
    opened[2].dispose()


def _through_april(contest: Contest) -> None:
    for month in (Month(2021, 1), Month(2021, 2), Month(2021, 3), Month(2021, 4)):
        contest.close_month(month)


def _statuses(registry: ModelRegistry) -> dict[int, tuple[str | None, tuple[str, ...]]]:
    return {v.version: (v.status, v.aliases) for v in registry.versions()}


def test_promote_by_hand_then_roll_back_with_an_audit_trail(
    world: tuple[Contest, ModelRegistry, PriceStore], sim: Sim
) -> None:
    contest, registry, _store = world
    _through_april(contest)  # v2 champion (won April), v3 challenger
    sim.now = datetime(2021, 5, 10, 7, 30, tzinfo=UTC)

    promoted = contest.changes.promote(3, reason="try the challenger early", actor="alice@laptop")

    assert (promoted.from_version, promoted.to_version, promoted.source) == (2, 3, "manual")
    assert _statuses(registry) == {
        1: ("archived", ()),
        2: ("archived", ()),
        3: ("production", (CHAMPION,)),  # the challenger's shadow is over: no staging left
    }
    assert contest.changes.problems() == []
    with pytest.raises(ChangeRefusedError, match="already the champion"):
        contest.changes.promote(3, reason="again", actor="alice@laptop")
    with pytest.raises(ChangeRefusedError, match="no version 9"):
        contest.changes.promote(9, reason="typo", actor="alice@laptop")
    with pytest.raises(ChangeRefusedError, match="reason is required"):
        contest.changes.promote(1, reason=" ", actor="alice@laptop")

    back = contest.changes.rollback(reason="v3 misbehaves", actor="bob@ops")
    assert (back.from_version, back.to_version) == (3, 2)
    assert registry.get_by_alias(CHAMPION).version == 2  # type: ignore[union-attr]
    history = contest.changes.history()
    assert [(h.from_version, h.to_version, h.source, h.actor) for h in history] == [
        (None, 1, "contest", "contest"),
        (1, 2, "contest", "contest"),
        (2, 3, "manual", "alice@laptop"),
        (3, 2, "manual", "bob@ops"),
    ]
    assert history[2].sim_time == sim.now
    assert history[2].reason == "try the challenger early"
    assert history[1].sim_time == pd.Timestamp("2021-05-01", tz="UTC")  # v2 serves from May
    assert contest.changes.problems() == []
    # May has no challenger in shadow any more: no contest, a new challenger is trained.
    may = contest.close_month(Month(2021, 5))
    assert may.contest is None
    assert "no challenger" in may.note
    assert [t.version for t in may.trained] == [4]
    assert contest.changes.problems() == []


def test_a_rollback_inside_a_month_is_scored_hour_by_hour_as_it_served(
    world: tuple[Contest, ModelRegistry, PriceStore], sim: Sim
) -> None:
    contest, _registry, store = world
    _through_april(contest)  # v2 champion from May 1st, v3 in shadow
    sim.now = datetime(2021, 5, 16, 0, 0, tzinfo=UTC)
    contest.changes.rollback(reason="back to v1 for the second half of May", actor="ops")

    may = contest.close_month(Month(2021, 5))

    assert may.contest is not None
    targets = may.predictions.loc[may.predictions["role"] == CHAMPION]  # type: ignore[union-attr]
    by_version = targets.groupby("model_version")["target_time"].agg(["min", "max", "count"])
    assert by_version.loc[2, "max"] == pd.Timestamp("2021-05-15 23:00", tz="UTC")
    assert by_version.loc[1, "min"] == pd.Timestamp("2021-05-16 00:00", tz="UTC")
    assert may.contest.tenure == {1: int(by_version.loc[1, "count"]), 2: int(by_version.loc[2, "count"])}
    served_by = f"champion side served by v2 ({may.contest.tenure[2]} h), then v1 ({may.contest.tenure[1]} h)"
    assert served_by in may.contest.decision.reason
    (row,) = [r for r in store.list_decisions(NAME) if r.eval_start.month == 5]
    assert row.champion_version == 1  # the champion at the close, whose place is contested
    assert row.metrics["tenure"] == {"1": may.contest.tenure[1], "2": may.contest.tenure[2]}
    served = contest.served_forecasts(Month(2021, 5))
    assert served["model_version"].tolist() == targets.sort_values("target_time")["model_version"].tolist()
    assert contest.changes.problems() == []


def test_an_alias_moved_in_the_mlflow_ui_is_recorded_as_external_and_tags_follow(
    world: tuple[Contest, ModelRegistry, PriceStore], sim: Sim
) -> None:
    contest, registry, _store = world
    _through_april(contest)
    sim.now = datetime(2021, 5, 3, tzinfo=UTC)
    client = MlflowClient(tracking_uri=registry.tracking_uri, registry_uri=registry.tracking_uri)
    client.set_registered_model_alias(NAME, CHAMPION, "1")  # a person in the UI, not btcmlops
    client.set_model_version_tag(NAME, "3", "status", "production")  # and a stray tag by hand
    assert any("moved outside btcmlops" in p for p in contest.changes.problems())

    recorded = contest.changes.sync_with_registry()

    assert recorded is not None
    assert (recorded.from_version, recorded.to_version, recorded.source) == (2, 1, "external")
    assert recorded.sim_time == sim.now
    assert _statuses(registry) == {
        1: ("production", (CHAMPION,)),
        2: ("archived", ()),
        3: ("staging", (CHALLENGER,)),
    }
    assert contest.changes.sync_with_registry() is None  # recorded once
    assert contest.changes.problems() == []


def test_a_month_short_of_data_has_no_contest_and_the_challenger_keeps_its_shadow(
    tmp_path: Path, mlflow_cache: Path
) -> None:
    april = pd.date_range("2021-04-03", "2021-04-30 23:00", freq="h", tz="UTC")  # only Apr 1-2 remain
    candles = CANDLES.loc[~CANDLES["open_time"].isin(april)].reset_index(drop=True)
    contest, registry, store = _open(tmp_path, mlflow_cache, candles, Sim())
    outcomes = {str(m): contest.close_month(m) for m in (Month(2021, m) for m in range(1, 6))}

    short = outcomes["2021-04"]
    assert short.contest is None
    assert short.trained == []
    assert short.note.startswith("no contest: 48 of 720 hours")  # the targets of Apr 1-2
    assert "v2 stays in shadow into 2021-05" in short.note
    may = outcomes["2021-05"]
    assert may.contest is not None
    assert may.contest.challenger_version == 2
    assert [v.version for v in registry.versions()] == [1, 2, 3]  # nothing orphaned
    assert contest.changes.problems() == []
    closes = {e.month: e.plan for e in store.journal.closed_months(NAME)}
    assert closes["2021-04"]["hours"] == 48
    assert closes["2021-04"]["decision"] is None
    store.dispose()


def test_a_replay_of_data_that_ends_inside_a_month_stops_at_the_last_complete_month(
    tmp_path: Path, mlflow_cache: Path
) -> None:
    candles = CANDLES.loc[CANDLES["open_time"] <= pd.Timestamp("2021-05-01 02:00", tz="UTC")]
    result = small_replay(tmp_path, candles.reset_index(drop=True), mlflow_cache=mlflow_cache)
    assert result.summary["data"]["last_complete_month"] == "2021-04"
    assert "the data ends inside 2021-05" in result.summary["data"]["stopped_early"]
    assert [d["month"] for d in result.summary["decisions"]] == ["2021-04"]


class InjectedCrashError(RuntimeError):
    """The process 'dies' at a step boundary."""


def test_a_change_by_hand_cut_off_half_way_is_rolled_forward_once_past_the_grace_and_once_only(
    world: tuple[Contest, ModelRegistry, PriceStore], sim: Sim, caplog: pytest.LogCaptureFixture
) -> None:
    contest, registry, store = world
    _through_april(contest)  # v2 champion, v3 challenger
    sim.now = datetime(2021, 5, 10, 7, 30, tzinfo=UTC)
    wall = [datetime.now(UTC)]  # the contest's own reconcile reads the real time

    def cut_at_champion_alias(name: str) -> None:
        if name == "registry.champion_alias":
            raise InjectedCrashError(name)

    def changes(on_step: Callable[[str], None] = no_step) -> ChampionChanges:
        """A process of its own (service, CLI, trainer): nothing shared but the stores."""
        return ChampionChanges(
            registry, store.journal, store, now=lambda: wall[0], sim_now=sim, on_step=on_step
        )

    with pytest.raises(InjectedCrashError):
        changes(cut_at_champion_alias).promote(1, reason="v1 was steadier", actor="alice@laptop")
    pending = store.journal.pending(NAME)
    assert pending is not None
    assert any("is pending" in problem for problem in contest.changes.problems())

    wall[0] += timedelta(seconds=29)  # within the grace: maybe still in flight elsewhere
    assert changes().repair_stale(30.0) is None
    assert contest.reconcile(grace_s=30.0) == []  # the trainer's path: the same rule
    assert store.journal.pending(NAME) == pending

    wall[0] += timedelta(seconds=2)
    claim = f"{REPAIR_CLAIM}:{pending.id}"
    store.journal.acquire_lease(claim, "other-replica:7", now=wall[0], ttl_s=30)
    assert changes().repair_stale(30.0) is None  # another process is repairing it: nothing done here
    assert store.journal.pending(NAME) == pending
    store.journal.release_lease(claim, "other-replica:7")

    caplog.set_level(logging.INFO, logger="btcmlops.contest.changes")
    repaired = changes().repair_stale(30.0)
    assert repaired is not None
    assert (repaired.from_version, repaired.to_version, repaired.source) == (2, 1, "manual")
    assert (repaired.actor, repaired.reason, repaired.sim_time) == (
        "alice@laptop",
        "v1 was steadier",
        sim.now,
    )
    assert f"repaired change #{pending.id} (promote v2 -> v1 by alice@laptop, pending 31.0 s" in caplog.text
    assert contest.changes.problems() == []
    assert registry.get_by_alias(CHAMPION).version == 1  # type: ignore[union-attr]
    assert changes().repair_stale(30.0) is None  # done: a second repairer finds nothing
    assert [(h.to_version, h.source, h.actor) for h in contest.changes.history()][-1:] == [
        (1, "manual", "alice@laptop")
    ]
    assert store.journal.lease(claim) is None  # the claim was given back

    # A month close is the trainer's (it trains, under its lease): never rolled forward here.
    close = store.journal.begin(
        NAME, "month_close", {"month": "2021-05"}, actor="contest", reason="x", now=wall[0], month="2021-05"
    )
    wall[0] += timedelta(hours=1)
    assert changes().repair_stale(30.0) is None
    assert store.journal.pending(NAME) == close
    store.journal.abandon(close.id)
