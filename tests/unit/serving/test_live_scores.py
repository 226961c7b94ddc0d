"""Live scores in ``/metrics``: the served forecasts scored as their hours close, on a real SQLite store.

The expected figures are worked out here by hand from the store's candles (the formulas written out,
naive's interval from numpy's quantiles of the trailing returns), not by the service's own code.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from btcmlops.clock import SimClock
from btcmlops.serving.live_scores import LiveScores
from btcmlops.serving.snapshot import SnapshotBuilder
from btcmlops.settings import Settings
from btcmlops.store import LoggedPrediction, PriceStore
from factories import make_candles
from services import wait_until

HOUR = timedelta(hours=1)
LEVEL = 0.8
SIM_NOW = datetime(2021, 4, 30, 12, tzinfo=UTC)
OLD_TARGET = datetime(2021, 4, 10, 5, tzinfo=UTC)
"""Out of sample, but more than 7 sim days before ``SIM_NOW``: in the totals, not in the window."""
RECENT_TARGETS = [datetime(2021, 4, 28, hour, tzinfo=UTC) for hour in (1, 2, 3)]
COUNTERS = (
    "scored_hours",
    "absolute_error_usdt",
    "naive_absolute_error_usdt",
    "absolute_percentage_error",
    "interval_hits",
    "interval_score_usdt",
    "naive_interval_score_usdt",
)
WINDOW_GAUGES = (
    "scored_hours",
    "absolute_error_usdt",
    "naive_absolute_error_usdt",
    "coverage_ratio",
    "interval_score_usdt",
    "naive_interval_score_usdt",
)

Families = dict[str, Any]
Serve = Callable[..., AbstractContextManager[TestClient]]
SettingsCopy = Callable[..., Settings]


def _families(client: TestClient) -> Families:
    answer = client.get("/metrics")
    assert answer.status_code == 200
    return {family.name: family for family in text_string_to_metric_families(answer.text)}


def _value(families: Families, name: str, **labels: str) -> float | None:
    family = families.get(name)
    for sample in [] if family is None else family.samples:
        if all(sample.labels.get(key) == value for key, value in labels.items()):
            return float(sample.value)
    return None


def _row(
    target: datetime,
    closes: pd.Series,
    version: int,
    *,
    made_after_s: float = 1800,
    shift: float = 0.002,
    interval: bool = True,
) -> LoggedPrediction:
    """A forecast of ``target`` made ``made_after_s`` sim seconds after its hour T, ``shift`` above the
    close at T, with an interval a little wider than half a percent each side."""
    last = float(closes[target - HOUR])
    return LoggedPrediction(
        timestamp=target - HOUR,
        target_time=target,
        predicted_close=last * (1 + shift),
        last_close=last,
        model_version=version,
        served_at=datetime.now(UTC),
        sim_made_at=target - HOUR + timedelta(seconds=made_after_s),
        interval_level=LEVEL if interval else None,
        lower_close=last * 0.995 if interval else None,
        upper_close=last * 1.004 if interval else None,
    )


def _expected(rows: list[LoggedPrediction], closes: pd.Series) -> dict[str, float]:
    """The counters' values for ``rows``, each hour scored by hand."""
    totals = dict.fromkeys(COUNTERS, 0.0)
    penalty = 2 / (1 - LEVEL)
    returns = np.log(closes / closes.shift(1))
    returns[closes.index.to_series().diff() != HOUR] = np.nan  # never across a gap
    for row in rows:
        actual, last = float(closes[row.target_time]), float(closes[row.timestamp])
        assert row.lower_close is not None
        assert row.upper_close is not None
        low, high = row.lower_close, row.upper_close
        trailing = returns[(returns.index > row.timestamp - 720 * HOUR) & (returns.index <= row.timestamp)]
        q_low, q_high = np.quantile(trailing.dropna(), [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
        naive_low, naive_high = last * math.exp(q_low), last * math.exp(q_high)
        totals["scored_hours"] += 1
        totals["absolute_error_usdt"] += abs(row.predicted_close - actual)
        totals["naive_absolute_error_usdt"] += abs(last - actual)
        totals["absolute_percentage_error"] += abs(row.predicted_close - actual) / actual
        totals["interval_hits"] += float(low <= actual <= high)
        totals["interval_score_usdt"] += (
            (high - low) + penalty * max(low - actual, 0) + penalty * max(actual - high, 0)
        )
        totals["naive_interval_score_usdt"] += (
            (naive_high - naive_low)
            + penalty * max(naive_low - actual, 0)
            + penalty * max(actual - naive_high, 0)
        )
    return totals


def _wait_scored(client: TestClient, version: int, hours: int) -> Families:
    found: dict[str, Families] = {}

    def scored() -> bool:
        found["families"] = _families(client)
        labels = {"model_version": str(version), "role": "champion"}
        return _value(found["families"], "btcmlops_live_scored_hours", **labels) == hours

    wait_until(scored, timeout_s=30, what="live scores", on_timeout=lambda: client.get("/metrics").text)
    return found["families"]


@pytest.fixture
def settings(settings_copy: SettingsCopy) -> Settings:
    """The test's store, its sim clock paused at ``SIM_NOW``."""
    settings = settings_copy()
    store = PriceStore(settings.store.url or "")
    store.write_clock(SimClock(SIM_NOW, datetime.now(UTC), 1.0, paused=True))
    store.dispose()
    return settings


def test_live_scores_are_the_hand_computed_ones_and_resume_after_a_restart(
    settings: Settings, serve: Serve
) -> None:
    store = PriceStore(settings.store.url or "")
    candles = store.read_candles()
    closes = pd.Series(candles["close"].to_numpy(), index=pd.DatetimeIndex(candles["open_time"]))
    try:
        with serve() as client:
            model = client.get("/model").json()
            version = model["version"]
            train_end = datetime.fromisoformat(model["training_window"]["train_end"])
            assert train_end < OLD_TARGET, "the test's hours must be after the champion's training window"
            counted = [_row(target, closes, version) for target in (OLD_TARGET, *RECENT_TARGETS)]
            counted[1] = _row(RECENT_TARGETS[0], closes, version, shift=-0.01)  # a miss below the interval
            late_hour = datetime(2021, 4, 29, 5, tzinfo=UTC)
            store.log_predictions(
                [
                    *counted,
                    _row(RECENT_TARGETS[0], closes, version, shift=0.05),  # asked again: the first counts
                    _row(late_hour, closes, version, made_after_s=3 * 3600),  # after its hour closed
                    _row(train_end, closes, version),  # in sample: the version was trained on it
                    _row(late_hour + HOUR, closes, version, interval=False),  # logged before intervals
                ]
            )
            families = _wait_scored(client, version, len(counted))
            labels = {"model_version": str(version), "role": "champion"}
            expected = _expected(counted, closes)
            for name, value in expected.items():
                assert _value(families, f"btcmlops_live_{name}", **labels) == pytest.approx(value, rel=1e-9)
            window = _expected(counted[1:], closes)
            hours = window["scored_hours"]
            assert hours == 3
            got = {
                name: _value(families, f"btcmlops_live_window_{name}", window="7d", **labels)
                for name in WINDOW_GAUGES
            }
            assert got == pytest.approx(
                {
                    "scored_hours": hours,
                    "absolute_error_usdt": window["absolute_error_usdt"] / hours,
                    "naive_absolute_error_usdt": window["naive_absolute_error_usdt"] / hours,
                    "coverage_ratio": window["interval_hits"] / hours,
                    "interval_score_usdt": window["interval_score_usdt"] / hours,
                    "naive_interval_score_usdt": window["naive_interval_score_usdt"] / hours,
                },
                rel=1e-9,
            )
            assert 0 < window["interval_hits"] < hours  # a hit and a miss, both counted as such
            mae, naive_mae = got["absolute_error_usdt"], got["naive_absolute_error_usdt"]
            score, naive_score = got["interval_score_usdt"], got["naive_interval_score_usdt"]
            assert client.get("/monitoring/scores").json() == {
                "window": "7d",
                "window_end": SIM_NOW.isoformat().replace("+00:00", "Z"),
                "interval_level": LEVEL,
                "scores": [
                    {
                        "model_version": version,
                        "role": "champion",
                        "scored_hours": hours,
                        "mean_absolute_error_usdt": pytest.approx(mae, rel=1e-9),
                        "naive_mean_absolute_error_usdt": pytest.approx(naive_mae, rel=1e-9),
                        "skill": pytest.approx(1 - mae / naive_mae, rel=1e-9),
                        "coverage": pytest.approx(got["coverage_ratio"], rel=1e-9),
                        "interval_score_usdt": pytest.approx(score, rel=1e-9),
                        "naive_interval_score_usdt": pytest.approx(naive_score, rel=1e-9),
                        "interval_skill": pytest.approx(1 - score / naive_score, rel=1e-9),
                    }
                ],
            }
            assert _value(families, "btcmlops_sim_time_seconds") == SIM_NOW.timestamp()
            newest = RECENT_TARGETS[-1].timestamp()
            assert _value(families, "btcmlops_live_last_scored_target_timestamp_seconds") == newest
            assert _value(families, "btcmlops_live_last_forecast_target_timestamp_seconds") == newest
            assert _value(families, "btcmlops_model_interval_level") == LEVEL
            before = client.get("/metrics").text

        with serve() as client:  # a new service on the same store: the figures resume, not from zero
            _wait_scored(client, version, len(counted))
            after = client.get("/metrics").text
        assert _live_lines(after) == _live_lines(before)
    finally:
        store.dispose()


def _live_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("btcmlops_live_")]


def test_metrics_follow_the_prometheus_naming_contract(settings: Settings, serve: Serve) -> None:
    """Counters exported with ``_total`` and labelled by version and role; window gauges also by window."""
    store = PriceStore(settings.store.url or "")
    candles = store.read_candles()
    closes = pd.Series(candles["close"].to_numpy(), index=pd.DatetimeIndex(candles["open_time"]))
    try:
        with serve() as client:
            version = client.get("/model").json()["version"]
            store.log_predictions([_row(target, closes, version) for target in RECENT_TARGETS])
            families = _wait_scored(client, version, len(RECENT_TARGETS))
    finally:
        store.dispose()
    for name in COUNTERS:
        family = families[f"btcmlops_live_{name}"]
        assert family.type == "counter"
        assert [sample.name for sample in family.samples] == [f"btcmlops_live_{name}_total"]
        assert family.samples[0].labels == {"model_version": str(version), "role": "champion"}
    for name in WINDOW_GAUGES:
        family = families[f"btcmlops_live_window_{name}"]
        assert family.type == "gauge"
        assert family.samples[0].labels == {"model_version": str(version), "role": "champion", "window": "7d"}
    for name in (
        "btcmlops_sim_time_seconds",
        "btcmlops_live_last_scored_target_timestamp_seconds",
        "btcmlops_live_last_forecast_target_timestamp_seconds",
        "btcmlops_model_interval_level",
    ):
        assert families[name].type == "gauge"
        assert [sample.labels for sample in families[name].samples] == [{}]
    every = [name for name in families if name.startswith("btcmlops_")]
    assert not [name for name in every if name.count("btcmlops_") > 1 or name.endswith("_total")]


def test_a_forecast_is_scored_once_its_close_arrives_and_its_version_window_is_known(tmp_path: Path) -> None:
    """Incremental: nothing before the version's training window is known, then the hour whose close is in
    memory, then the other as its candle arrives; a fresh reader of the same log gets the same totals."""
    store = PriceStore(f"sqlite:///{tmp_path / 'prices.db'}")
    store.migrate()
    candles = make_candles("2021-01-01", "2021-02-15 23:00")
    closes = pd.Series(candles["close"].to_numpy(), index=pd.DatetimeIndex(candles["open_time"]))
    first, second = datetime(2021, 2, 10, tzinfo=UTC), datetime(2021, 2, 10, 5, tzinfo=UTC)
    store.log_predictions([_row(first, closes, 1), _row(second, closes, 1)])
    builder = SnapshotBuilder(Settings().model.feature_set)
    builder.add_candles(candles.loc[candles["open_time"] <= pd.Timestamp(first)])
    ends: dict[int, datetime] = {}
    scores = LiveScores()
    try:
        assert scores.update(store, builder.current, lambda versions: ends) == 0  # window unknown yet
        ends[1] = datetime(2021, 1, 31, 23, tzinfo=UTC)
        assert (
            scores.update(store, builder.current, lambda versions: ends) == 1
        )  # the second's close: not yet
        assert scores.last_forecast_hour is not None
        assert scores.last_forecast_hour * 3600 == second.timestamp()
        builder.add_candles(candles)
        assert scores.update(store, builder.current, lambda versions: ends) == 1
        assert scores.update(store, builder.current, lambda versions: ends) == 0  # each hour once
        tally = scores.tallies[1, "champion"]
        expected = _expected([_row(first, closes, 1), _row(second, closes, 1)], closes)
        assert tally.totals == pytest.approx(expected, rel=1e-9)
        again = LiveScores()
        assert again.update(store, builder.current, lambda versions: ends) == 2
        assert again.tallies[1, "champion"].totals == tally.totals
    finally:
        store.dispose()


def test_a_live_forecast_counts_as_made_when_answered_not_when_its_log_row_is_read_back(
    settings: Settings, serve: Serve
) -> None:
    """The stalled-pipeline alert reads the newest live forecast: at 48 sim h/s the log's flush and the
    scorer's next round are tens of sim hours, so the answer itself must move it."""
    asked = SIM_NOW - HOUR  # its target hour, SIM_NOW, is still open: a live forecast
    with serve(serve={"log_flush_interval_s": 3600.0}) as client:  # nothing reaches the store meanwhile
        before = _value(_families(client), "btcmlops_live_last_forecast_target_timestamp_seconds")
        answer = client.post("/predict", json={"timestamp": asked.isoformat()})
        assert answer.status_code == 200, answer.text
        assert answer.json()["in_sample"] is False
        after = _value(_families(client), "btcmlops_live_last_forecast_target_timestamp_seconds")
        assert (
            client.get("/predictions", params={"start": asked.isoformat(), "end": asked.isoformat()}).json()
            == []
        )
    assert before is None or before < SIM_NOW.timestamp()
    assert after == SIM_NOW.timestamp()
