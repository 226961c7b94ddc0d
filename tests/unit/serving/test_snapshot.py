"""The snapshot's precomputed forecasts: the point and the interval of each hour, as the replay computes
them, whether the candles came at once or one by one, and unmoved by any later candle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from btcmlops.features import build_features, build_samples
from btcmlops.model import train_forecaster
from btcmlops.registry import ModelVersionInfo
from btcmlops.serving.snapshot import ServedModel, Snapshot, SnapshotBuilder, hour_number
from btcmlops.settings import ModelSettings
from btcmlops.training_window import TrainingWindow
from factories import make_candles

CANDLES = make_candles("2021-01-01", "2021-01-20 23:00", ar=0.3)
FORECASTER = train_forecaster(
    build_samples(CANDLES.iloc[:300]), ModelSettings(num_boost_round=20, min_data_in_leaf=20)
)
WINDOW = TrainingWindow(
    pd.Timestamp("2021-01-01", tz="UTC"), pd.Timestamp("2021-01-13", tz="UTC"), 300, "h", "x"
)
MODEL = ServedModel(ModelVersionInfo(1, "run", "v1", WINDOW, None, ("champion",)), FORECASTER)


def _snapshot(*parts: pd.DataFrame) -> Snapshot:
    builder = SnapshotBuilder("v1")
    builder.use_model(MODEL)
    for part in parts:
        builder.add_candles(part)
    return builder.current


def test_each_hours_interval_is_the_forecasters_on_its_features_whole_or_appended() -> None:
    features = build_features(CANDLES)
    lower, upper = FORECASTER.predict_interval(features)
    whole = _snapshot(CANDLES)
    appended = _snapshot(*(CANDLES.iloc[start : start + 50] for start in range(0, len(CANDLES), 50)))
    rows = np.searchsorted(whole.hours, [hour_number(t) for t in features.index])
    for snapshot in (whole, appended):
        assert snapshot.valid[rows].all()
        np.testing.assert_array_equal(snapshot.lower[rows], lower)
        np.testing.assert_array_equal(snapshot.upper[rows], upper)
        np.testing.assert_array_equal(snapshot.predicted[rows], FORECASTER.predict_close(features))
    assert (whole.lower[rows] < whole.upper[rows]).all()
    assert np.isnan(whole.lower[~whole.valid]).all()


@pytest.mark.parametrize("later", [1, 7, 200])
def test_moving_later_candles_leaves_an_hours_served_interval_unchanged(later: int) -> None:
    t_index = 150
    changed = CANDLES.copy()
    changed.loc[t_index + later :, ["open", "high", "low", "close"]] *= 1.3
    before, after = _snapshot(CANDLES), _snapshot(changed)
    assert before.lower[t_index] == after.lower[t_index]
    assert before.upper[t_index] == after.upper[t_index]
    assert before.predicted[t_index] == after.predicted[t_index]
    assert before.lower[t_index + later] != after.lower[t_index + later]  # the moved hours do move
