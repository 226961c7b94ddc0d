"""The load check: a new champion must forecast the known hours plausibly, and from this market's past."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

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


def _forecasting(log_return: float) -> Any:
    """A forecaster whose every forecast is the last close times exp(``log_return``)."""
    return SimpleNamespace(predict_matrix=lambda rows: np.full(len(rows), log_return))


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
