"""``GET /contest/live``: the running contest, judged by the contest's own code on the hours closed so far.

The figures of a decided month must be the trainer's decision to the cent; those of a month in progress
are checked against the replay's own predictions (``predictions.csv``: what served each hour and the
challenger's shadow forecasts), scored here with the formulas written out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from btcmlops.calendar import Month
from btcmlops.contest.significance import diebold_mariano
from btcmlops.registry import ModelRegistry
from btcmlops.replay import ReplayResult
from btcmlops.serving.live_contest import LiveContest, LiveContestCollector, LiveStanding
from btcmlops.serving.routes.contest import live_contest_public
from btcmlops.serving.snapshot import ServedModel, hour_number
from btcmlops.settings import Settings
from btcmlops.store import DecisionRow, PriceStore
from btcmlops.store.schema import registry_journal

Serve = Callable[..., AbstractContextManager[TestClient]]
SettingsCopy = Callable[..., Settings]
CENT = 0.005


def test_a_decided_month_judged_again_is_the_trainers_decision_to_the_cent(serve: Serve) -> None:
    with serve() as client:
        decisions = client.get("/decisions").json()
        assert decisions
        lives = {
            decision["eval_start"][:7]: client.get(
                "/contest/live", params={"month": decision["eval_start"][:7]}
            ).json()
            for decision in decisions
        }
    for decision in decisions:
        live = lives[decision["eval_start"][:7]]
        assert live["state"] == "decided"
        assert (live["champion_version"], live["challenger_version"]) == (
            decision["champion_version"],
            decision["challenger_version"],
        )
        assert live["hours_left"] == 0
        assert live["hours_scored"] == decision["metrics"]["champion"]["n"]
        for name in ("champion", "challenger", "naive"):
            assert abs(live[f"{name}_mae"] - decision[f"{name}_mae"]) < CENT, name
            assert (
                abs(
                    live[f"{name}_interval"]["interval_score"]
                    - decision[f"{name}_interval"]["interval_score"]
                )
                < CENT
            ), name
            assert live[f"{name}_interval"]["coverage"] == decision[f"{name}_interval"]["coverage"]
        for key in ("dm_statistic", "dm_p_value", "dm_interval_statistic", "dm_interval_p_value"):
            assert live[key] == pytest.approx(decision[key], abs=1e-9), key
        assert (live["would_promote"], live["reason"]) == (decision["promoted"], decision["reason"])
        assert live["rule"]["metric"] == decision["metric"]


def test_a_month_neither_decided_nor_in_progress_is_404_and_a_bad_month_422(serve: Serve) -> None:
    with serve() as client:
        assert client.get("/contest/live", params={"month": "2019-01"}).status_code == 404
        assert client.get("/contest/live", params={"month": "2021-13"}).status_code == 422


def test_the_month_in_progress_without_a_challenger_says_so_and_exports_no_figures(serve: Serve) -> None:
    """The replay decided its last month and trained no challenger after it: nothing to judge."""
    with serve() as client:
        deadline = time.monotonic() + 30
        # The first rounds may come before the champion loaded (503, then "no champion yet").
        while (answer := client.get("/contest/live")).status_code == 503 or (
            answer.json()["note"] == "no champion yet"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        body = answer.json()
        metrics = client.get("/metrics").text
    assert answer.status_code == 200, body
    assert body["note"] is not None
    assert "challenger" in body["note"]
    assert body["champion_mae"] is None
    assert body["would_promote"] is None
    assert "btcmlops_contest_live_hours_scored{" not in metrics
    assert "# TYPE btcmlops_contest_live_would_promote gauge" in metrics
    assert "btcmlops_shadow_failures_total 0.0" in metrics


def test_with_the_shadow_off_there_is_no_live_contest(serve: Serve) -> None:
    with serve(serve={"shadow_challenger": False}) as client:
        assert client.get("/contest/live").status_code == 404
        assert (
            client.get(
                "/shadow", params={"start": "2021-04-01T00:00:00Z", "end": "2021-04-02T00:00:00Z"}
            ).json()["version"]
            is None
        )


def _by_hand(rows: pd.DataFrame, level: float) -> dict[str, float]:
    """MAE and interval score of one side's rows, the formulas written out."""
    actual = rows["actual_close"].to_numpy()
    lower, upper = rows["lower_close"].to_numpy(), rows["upper_close"].to_numpy()
    penalty = 2 / (1 - level)
    interval = (
        (upper - lower)
        + penalty * np.clip(lower - actual, 0, None)
        + penalty * np.clip(actual - upper, 0, None)
    )
    return {
        "mae": float(np.abs(rows["predicted_close"].to_numpy() - actual).mean()),
        "interval": float(interval.mean()),
    }


def _last_decided_month(settings: Settings) -> tuple[PriceStore, ModelRegistry, DecisionRow, Month]:
    """The service's store and registry (the caller disposes of the store), the last decision, its month."""
    store = PriceStore(settings.store.url or "")
    registry = ModelRegistry(
        settings.mlflow.tracking_uri or "", settings.mlflow.experiment, settings.mlflow.registered_model,
        create=False,
    )  # fmt: skip
    decision = store.list_decisions(registry.model_name)[-1]
    return store, registry, decision, Month.of(pd.Timestamp(decision.eval_start))


def test_the_standing_partway_is_the_replays_forecasts_of_the_hours_so_far_scored_by_hand(
    settings_copy: SettingsCopy, inputs_replay: ReplayResult
) -> None:
    """Half-way through a decided month: the champion side is what served each hour, the challenger its
    shadow forecasts, as the replay recorded them, and only the hours closed so far count."""
    settings = settings_copy()
    store, registry, decision, month = _last_decided_month(settings)
    live = LiveContest(settings.model, settings.contest, registry, store, lambda: (None, None))
    through = month.start + pd.Timedelta(hours=300)
    standing = live._judge(month, decision.champion_version, decision.challenger_version, through)
    store.dispose()

    predictions = pd.read_csv(inputs_replay.predictions_path, parse_dates=["target_time"])
    so_far = predictions.loc[
        (predictions["target_time"] >= month.start) & (predictions["target_time"] <= through)
    ]
    champion = so_far.loc[so_far["role"] == "champion"].sort_values("target_time")
    challenger = so_far.loc[so_far["role"] == "challenger"].sort_values("target_time")
    assert standing.judgement is not None
    assert standing.hours == len(champion) == len(challenger) > 250
    assert standing.hours_left == (month.next().start - month.start) / pd.Timedelta(hours=1) - 301
    level = settings.model.interval_level
    judged = standing.judgement
    for side, rows, scores, interval in (
        ("champion", champion, judged.champion, judged.champion_interval),
        ("challenger", challenger, judged.challenger, judged.challenger_interval),
    ):
        expected = _by_hand(rows, level)
        assert scores.mae == pytest.approx(expected["mae"], rel=1e-9), side
        assert interval is not None
        assert interval.interval_score == pytest.approx(expected["interval"], rel=1e-9)
    naive = np.abs(champion["naive_close"].to_numpy() - champion["actual_close"].to_numpy()).mean()
    assert judged.naive.mae == pytest.approx(naive, rel=1e-9)
    errors = [
        np.abs(r["predicted_close"].to_numpy() - r["actual_close"].to_numpy()) for r in (champion, challenger)
    ]
    assert judged.tests["mae"].p_value == pytest.approx(diebold_mariano(*errors).p_value, rel=1e-9)


def _gauges(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("btcmlops_contest_live_")
    }


def test_metrics_carry_the_same_figures_as_the_route(serve: Serve) -> None:
    """The collector reads the standing the route shows: the last decided month's, put in as the month
    in progress (the replay's stores hold no month in progress with a challenger)."""
    with serve() as client:
        month = client.get("/decisions").json()[-1]["eval_start"][:7]
        body = client.get("/contest/live", params={"month": month}).json()
        service = client.app.state.service  # type: ignore[attr-defined]
        standing: LiveStanding = service.live_contest.of_month(Month.parse(month))
    collector = LiveContestCollector(service.live_contest)
    service.live_contest.current = standing
    registry = CollectorRegistry()
    registry.register(collector)
    gauges = _gauges(generate_latest(registry).decode())
    labels: dict[str, Any] = {"month": month}
    assert gauges[("btcmlops_contest_live_hours_scored", tuple(labels.items()))] == body["hours_scored"]
    assert gauges[("btcmlops_contest_live_hours_left", tuple(labels.items()))] == 0
    for role in ("champion", "challenger", "naive"):
        key = tuple(sorted({**labels, "role": role}.items()))
        assert gauges[("btcmlops_contest_live_mean_absolute_error_usdt", key)] == body[f"{role}_mae"]
        assert (
            gauges[("btcmlops_contest_live_interval_score_usdt", key)]
            == body[f"{role}_interval"]["interval_score"]
        )
        assert gauges[("btcmlops_contest_live_coverage_ratio", key)] == body[f"{role}_interval"]["coverage"]
    for test, prefix in (("mae", "dm"), ("interval_score", "dm_interval")):
        key = tuple(sorted({**labels, "test": test}.items()))
        assert gauges[("btcmlops_contest_live_dm_p_value", key)] == body[f"{prefix}_p_value"]
    assert gauges[("btcmlops_contest_live_would_promote", tuple(labels.items()))] == float(
        body["would_promote"]
    )
    assert live_contest_public(standing, Settings().contest, None).champion_mae == body["champion_mae"]


def test_the_month_in_progress_judged_live_at_its_end_is_its_decision(settings_copy: SettingsCopy) -> None:
    """The live path itself: with the last month's close taken back out of the journal (as while the
    trainer has not closed it yet), that month is the one in progress, every hour closed; judged by
    ``update`` with the contestants in memory, it is the decision the close recorded, to the cent."""
    settings = settings_copy()
    store, registry, decision, month = _last_decided_month(settings)
    engine = sa.create_engine(settings.store.url or "")
    with engine.begin() as connection:
        connection.execute(sa.delete(registry_journal).where(registry_journal.c.month == str(month)))
    engine.dispose()
    versions = {info.version: info for info in registry.versions()}
    held = tuple(
        ServedModel(info=versions[v], forecaster=registry.load(v))
        for v in (decision.champion_version, decision.challenger_version)
    )
    live = LiveContest(settings.model, settings.contest, registry, store, lambda: held, every_s=3600)
    newest = hour_number(month.last_hour)
    live.update(newest)
    judged_at = live.current
    live.update(newest)  # nothing changed: not judged again
    store.dispose()

    assert judged_at is not None
    assert live.current is judged_at
    assert judged_at.standing is not None
    assert judged_at.standing.judgement is not None
    assert (judged_at.month, judged_at.state, judged_at.standing.hours_left) == (month, "closing", 0)
    judgement = judged_at.standing.judgement
    for side, recorded in (
        (judgement.champion, decision.champion_mae),
        (judgement.challenger, decision.challenger_mae),
        (judgement.naive, decision.naive_mae),
    ):
        assert abs(side.mae - recorded) < CENT
    assert judgement.decision.reason == decision.reason
    assert judgement.tests["mae"].p_value == pytest.approx(
        decision.metrics["significance"]["p_value"], abs=1e-12
    )


def test_a_decided_month_asked_before_its_hours_are_in_memory_is_judged_from_the_store(
    settings_copy: SettingsCopy,
) -> None:
    """A service just started may hold part of the candles when a decided month is asked for: the
    answer (kept for the next asks) is still the trainer's decision, read from the store, not the part."""
    settings = settings_copy()
    store, registry, decision, month = _last_decided_month(settings)
    in_memory = store.read_candles(end=(month.start + pd.Timedelta(hours=100)).to_pydatetime())
    live = LiveContest(
        settings.model, settings.contest, registry, store, lambda: (None, None), lambda: in_memory
    )
    try:
        standing = live.of_month(month)
    finally:
        store.dispose()
    assert standing.state == "decided"
    assert standing.standing is not None
    assert standing.standing.judgement is not None
    assert standing.standing.hours == decision.metrics["champion"]["n"] > 100
    assert standing.standing.hours_left == 0
    judged = standing.standing.judgement
    assert abs(judged.champion.mae - decision.champion_mae) < CENT
    assert abs(judged.challenger.mae - decision.challenger_mae) < CENT
