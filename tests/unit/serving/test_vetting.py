"""The load check: a new champion must forecast the known hours plausibly, and from this market's past."""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from btcmlops.model import Forecaster
from btcmlops.registry import ModelVersionInfo
from btcmlops.serving.snapshot import Snapshot, SnapshotBuilder
from btcmlops.serving.vetting import vet
from btcmlops.training_window import TrainingWindow
from factories import make_candles


def _snapshot() -> Snapshot:
    builder = SnapshotBuilder("v1")
    return builder.add_candles(make_candles("2021-01-01", "2021-01-20 23:00"))


def _info(train_end: str = "2021-01-10") -> ModelVersionInfo:
    window = TrainingWindow(
        pd.Timestamp("2021-01-01", tz="UTC"), pd.Timestamp(train_end, tz="UTC"), 200, "h", "2021-01"
    )
    return ModelVersionInfo(7, "run", "v1", window, "production", ("champion",))


def _forecasting(log_return: float, interval: tuple[float, float] | None = (-0.01, 0.01)) -> Any:
    """A forecaster whose every forecast is the last close times exp(``log_return``), its interval the
    last close times exp of ``interval``'s bounds (None: a version from before intervals)."""
    low, high = interval if interval is not None else (np.nan, np.nan)
    bounds = SimpleNamespace(
        predict_log_return=lambda rows: (np.full(len(rows), low), np.full(len(rows), high))
    )
    forecaster = SimpleNamespace(
        predict_matrix=lambda rows: np.full(len(rows), log_return),
        interval=None if interval is None else bounds,
    )
    forecaster.forecast_closes = partial(Forecaster.forecast_closes, forecaster)  # the real arithmetic
    return forecaster


def test_a_version_near_naive_may_serve() -> None:
    assert vet(_snapshot(), _info(), _forecasting(0.0), hours=168, max_ratio=2.0) is None


def test_a_wild_version_is_refused_with_its_mae_against_naive() -> None:
    problem = vet(_snapshot(), _info(), _forecasting(np.log(148.0)), hours=168, max_ratio=2.0)
    assert problem is not None
    assert problem.startswith("version 7 is implausible on the last 168 known hours: MAE ")
    assert "more than 2 times" in problem


def test_a_version_that_forecasts_nonsense_or_comes_from_the_future_is_refused() -> None:
    assert "non-finite" in (vet(_snapshot(), _info(), _forecasting(np.inf), hours=24, max_ratio=2.0) or "")
    ahead = vet(_snapshot(), _info(train_end="2021-02-01"), _forecasting(0.0), hours=24, max_ratio=2.0)
    assert ahead is not None
    assert "after the newest hour this service holds" in ahead


def test_nothing_in_memory_yet_is_no_reason_to_refuse() -> None:
    assert (
        vet(SnapshotBuilder("v1").current, _info(), _forecasting(np.log(148.0)), hours=24, max_ratio=2.0)
        is None
    )


def test_a_version_without_an_interval_is_refused_by_name_saying_to_retrain_even_with_nothing_in_memory() -> (
    None
):
    for snapshot in (_snapshot(), SnapshotBuilder("v1").current):
        problem = vet(snapshot, _info(), _forecasting(0.0, interval=None), hours=24, max_ratio=2.0)
        assert problem is not None
        assert problem.startswith("version 7 has no interval (registered before intervals)")
        assert "retrain" in problem
        assert "replay" in problem


@pytest.mark.parametrize(
    ("interval", "why"),
    [
        ((-0.01, np.inf), "non-finite interval"),
        ((-0.01, np.nan), "non-finite interval"),
        ((0.01, -0.01), "lower close is not below its upper close on 24 of the last 24 known hours"),
        ((0.0, 0.0), "lower close is not below its upper close"),
    ],
)
def test_an_interval_that_is_not_finite_or_not_ordered_is_refused(
    interval: tuple[float, float], why: str
) -> None:
    problem = vet(_snapshot(), _info(), _forecasting(0.0, interval), hours=24, max_ratio=2.0)
    assert problem is not None
    assert problem.startswith("version 7 ")
    assert why in problem
