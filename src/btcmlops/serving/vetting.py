"""``vet``: whether a version may serve, judged on hours the service already holds, before anyone sees it.

A finite number is not enough: a version whose forecasts are 148 times the price is finite. So a new
champion forecasts the last ``vet_hours`` known hours in memory, and its MAE must stay within
``vet_max_mae_ratio`` times naive's ("next close = last close") on the same hours. Its training window
must also end no later than the newest hour the service holds: a version trained on hours this service
has not seen comes from another data set, or from the future of a clock that was reset back.

Every forecast is answered with its central interval, so a version must carry one (a version registered
before intervals has none: it is refused, whatever the hours in memory), and on the same hours its
interval must be finite with its lower close below its upper close.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from btcmlops.contest.scoring import absolute_errors
from btcmlops.model import Forecaster, naive_close
from btcmlops.registry import ModelVersionInfo
from btcmlops.serving.snapshot import Snapshot, hour_number


def vet(
    snapshot: Snapshot, info: ModelVersionInfo, forecaster: Forecaster, *, hours: int, max_ratio: float
) -> str | None:
    """Why version ``info`` may not serve on ``snapshot``'s hours, or None when it may."""
    if forecaster.interval is None:
        return (
            f"version {info.version} has no interval (registered before intervals), and every forecast is "
            "served with one: retrain it (btcmlops trainer) or replay (btcmlops simulate) to register a "
            "version that carries one"
        )
    latest = snapshot.latest_hour
    if latest is None:
        return None  # nothing known yet to judge on; the first candles come with the first forecasts
    trained_to = hour_number(info.window.train_end - timedelta(hours=1))
    if trained_to > latest:
        return (
            f"version {info.version} was trained through {info.window.train_end:%Y-%m-%d %H:%M}, after the "
            "newest hour this service holds: not this market's past"
        )
    # Rows whose next hour is known: forecast, actual and naive side by side.
    has_next = np.zeros(len(snapshot.hours), dtype=bool)
    has_next[:-1] = snapshot.hours[1:] == snapshot.hours[:-1] + 1
    rows = np.flatnonzero(snapshot.valid & has_next)[-hours:]
    if len(rows) == 0:
        return None
    last = snapshot.closes[rows]
    predicted, lower, upper = forecaster.forecast_closes(snapshot.features[rows], last)
    if not np.isfinite(predicted).all():
        return f"version {info.version} forecasts a non-finite close on a known hour"
    if not (np.isfinite(lower).all() and np.isfinite(upper).all()):
        return f"version {info.version} gives a non-finite interval on a known hour"
    if not (lower < upper).all():
        crossed = int(np.count_nonzero(~(lower < upper)))
        return (
            f"version {info.version} gives an interval whose lower close is not below its upper close on "
            f"{crossed} of the last {len(rows)} known hours"
        )
    actual = snapshot.closes[rows + 1]
    model_mae = float(absolute_errors(actual, predicted).mean())
    naive_mae = float(absolute_errors(actual, naive_close(last)).mean())
    if naive_mae > 0 and model_mae > max_ratio * naive_mae:
        return (
            f"version {info.version} is implausible on the last {len(rows)} known hours: "
            f"MAE {model_mae:,.2f} against naive {naive_mae:,.2f} (more than {max_ratio:g} times)"
        )
    return None
