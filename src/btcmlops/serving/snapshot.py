"""``Snapshot``: what one request needs, immutable; ``SnapshotBuilder`` makes the next one."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
import pandas as pd

from btcmlops.candles import CANDLE_VALUES, NS_PER_HOUR, candle_values, hour_index
from btcmlops.features import feature_matrix, get_feature_set
from btcmlops.model import Forecaster, Forecasts
from btcmlops.registry import ModelVersionInfo


def hour_number(moment: datetime | pd.Timestamp) -> int:
    """Whole hours since the epoch of an on-the-hour UTC time."""
    return int(pd.Timestamp(moment).value // NS_PER_HOUR)


def hour_time(hour: int) -> datetime:
    """The UTC time of ``hour`` (whole hours since the epoch): ``hour_number``'s inverse."""
    return datetime.fromtimestamp(hour * 3600, UTC)


def whole_hour(moment: datetime) -> int | None:
    """Hours since the epoch if ``moment`` (tz-aware) is on the hour, else None; no pandas (hot path)."""
    utc = moment.astimezone(UTC)
    if utc.minute or utc.second or utc.microsecond:
        return None
    return int(utc.timestamp()) // 3600


@dataclass(frozen=True)
class ServedModel:
    """A loaded, verified champion version."""

    info: ModelVersionInfo
    forecaster: Forecaster
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class Snapshot:
    """Candles in memory (ascending hours), their features, and the model's forecast for each.

    ``predicted[i]`` is NaN where hour ``hours[i]`` has no complete window (history or a gap), and so
    are ``lower[i]`` and ``upper[i]``, the bounds of the model's central interval (NaN everywhere for a
    model without one).
    """

    hours: npt.NDArray[np.int64]
    closes: npt.NDArray[np.float64]
    features: npt.NDArray[np.float64]
    valid: npt.NDArray[np.bool_]
    predicted: npt.NDArray[np.float64]
    lower: npt.NDArray[np.float64]
    upper: npt.NDArray[np.float64]
    model: ServedModel | None
    feature_set: str
    values: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty((0, len(CANDLE_VALUES))))
    """Every candle's OHLCV as read: a late or corrected candle in the store is told apart by it."""

    def differs(self, candles: pd.DataFrame) -> bool:
        """Whether any of ``candles`` at or before the newest hour in memory is missing or different here.

        Such a candle came late (a gap filled) or was corrected: the snapshot must be built again.
        """
        if candles.empty or self.latest_hour is None:
            return False
        hours = hour_index(candles["open_time"])
        known = hours <= self.latest_hour
        positions = np.searchsorted(self.hours, hours[known])
        inside = positions < len(self.hours)
        found = np.zeros(len(positions), dtype=bool)
        found[inside] = self.hours[positions[inside]] == hours[known][inside]
        if not found.all():
            return True
        stored = candle_values(candles)[known]
        return not np.array_equal(self.values[positions], stored)

    def candles(self) -> pd.DataFrame:
        """Every candle in memory in canonical form (``open_time`` and OHLCV as read from the store)."""
        frame = pd.DataFrame(self.values, columns=list(CANDLE_VALUES))
        frame.insert(0, "open_time", pd.to_datetime(self.hours * 3600, unit="s", utc=True).as_unit("ns"))
        return frame

    def index_of(self, hour: int) -> int | None:
        """Row of ``hour`` in the window, or None if that candle is not in memory."""
        position = int(np.searchsorted(self.hours, hour))
        if position < len(self.hours) and self.hours[position] == hour:
            return position
        return None

    @property
    def latest_hour(self) -> int | None:
        return int(self.hours[-1]) if len(self.hours) else None


def _empty(feature_set: str) -> Snapshot:
    width = len(get_feature_set(feature_set).columns)
    return Snapshot(
        hours=np.empty(0, dtype=np.int64),
        closes=np.empty(0),
        features=np.empty((0, width)),
        valid=np.empty(0, dtype=bool),
        predicted=np.empty(0),
        lower=np.empty(0),
        upper=np.empty(0),
        model=None,
        feature_set=feature_set,
    )


def _predict(model: ServedModel | None, features: npt.NDArray[np.float64], valid: npt.NDArray[np.bool_],
             closes: npt.NDArray[np.float64]) -> Forecasts:  # fmt: skip
    """``model``'s forecasts of the valid rows (``Forecaster.forecast_closes``, as the contest's)."""
    predicted, lower, upper = (np.full(len(closes), np.nan) for _ in range(3))
    if model is not None and valid.any():
        forecasts = model.forecaster.forecast_closes(features[valid], closes[valid])
        predicted[valid], lower[valid], upper[valid] = forecasts
    return Forecasts(predicted, lower, upper)


def shadow_forecasts(
    snapshot: Snapshot, model: ServedModel, first_hour: int, last_hour: int
) -> tuple[npt.NDArray[np.int64], Forecasts]:
    """``model``'s forecasts from the hours in [first_hour, last_hour] that it was not trained on.

    Hour T forecasts T + 1h, so T must be at or after the last training target: only unseen targets.
    """
    first = max(first_hour, hour_number(model.info.window.train_end))
    rows = (snapshot.hours >= first) & (snapshot.hours <= last_hour) & snapshot.valid
    return snapshot.hours[rows], _predict(
        model, snapshot.features[rows], snapshot.valid[rows], snapshot.closes[rows]
    )


def _appended(old: Snapshot, candles: pd.DataFrame) -> Snapshot:
    """``old`` with the candles newer than its newest hour; features and forecasts only for those."""
    if candles.empty:
        return old
    new_hours = hour_index(candles["open_time"])
    keep = new_hours > (old.latest_hour if old.latest_hour is not None else -1)
    if not keep.any():
        return old
    new_hours, values = new_hours[keep], candle_values(candles)[keep]
    # Trailing windows: the last window_hours - 1 old candles are all the history the new rows need.
    history = get_feature_set(old.feature_set).window_hours - 1
    kept = min(history, len(old.hours))
    joined_hours = np.concatenate([old.hours[len(old.hours) - kept :], new_hours])
    joined_values = np.concatenate([old.values[len(old.values) - kept :], values])
    features = feature_matrix(joined_hours, joined_values, old.feature_set)[kept:]
    valid = np.asarray(~np.isnan(features).any(axis=1), dtype=np.bool_)
    features = np.nan_to_num(features)
    closes = values[:, CANDLE_VALUES.index("close")].copy()
    forecasts = _predict(old.model, features, valid, closes)
    return Snapshot(
        hours=np.concatenate([old.hours, new_hours]),
        closes=np.concatenate([old.closes, closes]),
        features=np.concatenate([old.features, features]),
        valid=np.concatenate([old.valid, valid]),
        predicted=np.concatenate([old.predicted, forecasts.predicted]),
        lower=np.concatenate([old.lower, forecasts.lower]),
        upper=np.concatenate([old.upper, forecasts.upper]),
        model=old.model,
        feature_set=old.feature_set,
        values=np.concatenate([old.values, values]),
    )


class SnapshotBuilder:
    """Builds snapshots from new candles or a new model; one build at a time, readers never wait."""

    def __init__(self, feature_set: str) -> None:
        self._lock = threading.Lock()
        self.current: Snapshot = _empty(feature_set)

    def add_candles(self, candles: pd.DataFrame) -> Snapshot:
        """Append candles newer than the window; features and forecasts only for the new rows."""
        with self._lock:
            self.current = _appended(self.current, candles)
            return self.current

    def rebuild(self, candles: pd.DataFrame) -> Snapshot:
        """Build the window again from ``candles`` (all of them), with the model that serves now.

        For a late or corrected candle: every row after it may have other features, so nothing is kept.
        """
        with self._lock:
            empty = replace(_empty(self.current.feature_set), model=self.current.model)
            self.current = _appended(empty, candles)
            return self.current

    def use_model(self, model: ServedModel) -> Snapshot:
        """Forecast every hour in memory with ``model`` and make it the served one."""
        with self._lock:
            old = self.current
            forecasts = _predict(model, old.features, old.valid, old.closes)
            snapshot = Snapshot(
                hours=old.hours,
                closes=old.closes,
                features=old.features,
                valid=old.valid,
                predicted=forecasts.predicted,
                lower=forecasts.lower,
                upper=forecasts.upper,
                model=model,
                feature_set=old.feature_set,
                values=old.values,
            )
            self.current = snapshot
            return snapshot
