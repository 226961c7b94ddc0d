"""The challenger in shadow, scored live under ``role="challenger"``; a broken one never touches serving.

Expected figures are the replay's own shadow forecasts of the same version (``predictions.csv``), scored
here with the formulas written out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from btcmlops.registry import CHALLENGER, ModelRegistry
from btcmlops.replay import ReplayResult
from btcmlops.serving.snapshot import ServedModel
from btcmlops.serving.state import ServiceState
from btcmlops.settings import Settings
from services import wait_until

Serve = Callable[..., AbstractContextManager[TestClient]]
SettingsCopy = Callable[..., Settings]


def _value(client: TestClient, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def _last_challenger(settings: Settings, replay: ReplayResult) -> int:
    """The challenger of the replay's last contest (in shadow during the data's last month), in alias."""
    version = int(replay.summary["decisions"][-1]["challenger_version"])
    registry = ModelRegistry(
        settings.mlflow.tracking_uri or "", settings.mlflow.experiment, settings.mlflow.registered_model,
        create=False,
    )  # fmt: skip
    registry.set_alias(CHALLENGER, version)
    return version


def test_the_challengers_shadow_hours_are_scored_as_the_contest_forecast_them(
    settings_copy: SettingsCopy, serve: Serve, inputs_replay: ReplayResult
) -> None:
    settings = settings_copy()
    version = _last_challenger(settings, inputs_replay)
    predictions = pd.read_csv(inputs_replay.predictions_path)
    rows = predictions.loc[(predictions["role"] == "challenger") & (predictions["model_version"] == version)]
    labels = {"model_version": str(version), "role": "challenger"}

    with serve() as client:
        wait_until(
            lambda: _value(client, "btcmlops_live_scored_hours_total", **labels) == len(rows),
            timeout_s=30,
            what="the challenger's shadow hours scored",
            on_timeout=lambda: client.get("/metrics").text,
        )
        totals = {
            name: _value(client, f"btcmlops_live_{name}_total", **labels)
            for name in (
                "absolute_error_usdt",
                "naive_absolute_error_usdt",
                "interval_hits",
                "interval_score_usdt",
            )
        }
        served_version = client.get("/model").json()["version"]

    actual = rows["actual_close"].to_numpy()
    lower, upper = rows["lower_close"].to_numpy(), rows["upper_close"].to_numpy()
    level = float(rows["interval_level"].iloc[0])
    misses: npt.NDArray[np.float64] = np.clip(lower - actual, 0, None) + np.clip(actual - upper, 0, None)
    assert totals["absolute_error_usdt"] == pytest.approx(
        np.abs(rows["predicted_close"].to_numpy() - actual).sum(), rel=1e-9
    )
    assert totals["naive_absolute_error_usdt"] == pytest.approx(
        np.abs(rows["naive_close"].to_numpy() - actual).sum(), rel=1e-9
    )
    assert totals["interval_hits"] == ((actual >= lower) & (actual <= upper)).sum()
    assert totals["interval_score_usdt"] == pytest.approx(
        ((upper - lower) + 2 / (1 - level) * misses).sum(), rel=1e-9
    )
    assert served_version is not None  # the champion serves beside it


class _BrokenForecaster:
    """A challenger whose every forecast fails (a model that loads but cannot predict)."""

    interval_level = 0.8
    feature_columns: tuple[str, ...] = ()

    def forecast_closes(self, *_: Any) -> Any:
        raise RuntimeError("the shadow model cannot forecast")


def test_a_challenger_that_fails_to_forecast_is_shown_and_counted_and_the_champion_serves_on(
    serve: Serve,
) -> None:
    with serve() as client:
        service: ServiceState = client.app.state.service  # type: ignore[attr-defined]
        champion = service.snapshot.model
        assert champion is not None
        broken = ServedModel(info=champion.info, forecaster=_BrokenForecaster())  # type: ignore[arg-type]
        error = None
        deadline = time.monotonic() + 30
        while error is None and time.monotonic() < deadline:
            # The champion watcher puts the alias's challenger (none) back in between, and the candles
            # after the training window may still be on their way into memory.
            service.challenger = broken
            service.score_shadow()
            error = service.challenger_error
            time.sleep(0.01)
        failures = _value(client, "btcmlops_shadow_failures_total")
        answer = client.post("/predict", json={"timestamp": "2021-03-05T10:00:00Z"})
        assert service.snapshot.model is champion

    assert failures is not None
    assert failures >= 1
    assert error is not None  # until a round succeeds again, as /contest/live shows it
    assert "cannot forecast" in error
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"]["version"] == champion.info.version
