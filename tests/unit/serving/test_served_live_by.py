"""Which version served an hour live, from memory: the forecasts made in time, kept as the log is read
or as they are answered, judged by the one live rule (``counts_as_live``) with each version's window."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from btcmlops.registry import CHAMPION, ModelVersionInfo
from btcmlops.serving.live_scores import LiveScores, served_live_by
from btcmlops.serving.snapshot import SnapshotBuilder, hour_number
from btcmlops.serving.state import ServiceState
from btcmlops.settings import Settings
from btcmlops.store import LoggedPrediction, PriceStore

Serve = Callable[..., AbstractContextManager[TestClient]]


HOUR = timedelta(hours=1)
TARGET = datetime(2021, 2, 10, 5, tzinfo=UTC)


def _forecast(version: int, made_at: datetime | None, target: datetime = TARGET) -> LoggedPrediction:
    return LoggedPrediction(target - HOUR, target, 101.0, 100.0, version, made_at or target, made_at)


def test_the_first_version_whose_forecast_counts_as_live_served_the_hour() -> None:
    scores = LiveScores()
    scores.note_made_in_time(_forecast(3, TARGET + 2 * HOUR))  # after its hour closed: a look back
    scores.note_made_in_time(_forecast(1, TARGET - HOUR))
    scores.note_made_in_time(_forecast(2, TARGET - HOUR))
    scores.note_made_in_time(_forecast(1, TARGET))  # the same version again: its first is kept
    rows = scores.made_in_time(hour_number(TARGET))
    assert [row.model_version for row in rows] == [1, 2]
    assert rows[0].sim_made_at == TARGET - HOUR
    before, after = TARGET - HOUR, TARGET + HOUR
    assert served_live_by(rows, {1: before, 2: before}) == 1
    assert served_live_by(rows, {1: after, 2: before}) == 2  # v1 was trained on the hour: not live
    assert served_live_by(rows, {2: after}) is None  # v1's window unknown, v2 trained on it
    assert scores.made_in_time(hour_number(TARGET) + 1) == []
    assert served_live_by([], {1: before}) is None


def test_the_log_read_at_start_tells_who_served_each_hour(tmp_path: Path) -> None:
    """A new process knows it from the log, once the live scorer's first round has read it all."""
    store = PriceStore(f"sqlite:///{tmp_path / 'prices.db'}")
    store.migrate()
    other = TARGET + 5 * HOUR
    logged = [_forecast(2, TARGET - HOUR), _forecast(1, TARGET)]
    store.log_predictions([*logged, _forecast(1, None, other), _forecast(1, other, other)])
    scores = LiveScores()
    try:
        assert not scores.log_read
        scores.update(store, SnapshotBuilder(Settings().model.feature_set).current, lambda versions: {})
    finally:
        store.dispose()
    assert scores.log_read
    assert [row.model_version for row in scores.made_in_time(hour_number(TARGET))] == [2, 1]
    (row,) = scores.made_in_time(hour_number(other))  # the one without a sim time is no forecast
    assert row.sim_made_at == other
    assert served_live_by(scores.made_in_time(hour_number(TARGET)), {1: TARGET - HOUR}) == 1


def test_a_replaced_champions_window_is_kept_without_asking_mlflow(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its forecasts may be read from the log after it stopped serving (a busy scorer, a slow flush):
    the window this process loaded it with still tells which of them count as live, MLflow down or not."""
    with serve(serve={"poll_interval_s": 3600.0}) as client:  # the watchers' rounds are this test's
        service: ServiceState = client.app.state.service  # type: ignore[attr-defined]
        first = service.snapshot.model
        assert first is not None
        registry = service.registry
        other = next(info for info in registry.versions() if info.version != first.info.version)
        registry.set_alias(CHAMPION, other.version)
        try:
            assert service.check_registry()
            monkeypatch.setattr(registry, "versions", _mlflow_down)  # stands in for an MLflow outage
            ends = service.training_ends({first.info.version, other.version})
        finally:
            registry.set_alias(CHAMPION, first.info.version)
    assert ends == {
        first.info.version: first.info.window.train_end.to_pydatetime(),
        other.version: other.window.train_end.to_pydatetime(),
    }


def _mlflow_down() -> list[ModelVersionInfo]:
    raise ConnectionError("MLflow does not answer")
