"""The forecaster: train a model of the next hour's log return, and predict closes with it.

Two families, LightGBM (the default) and XGBoost (an optional extra, which can fit on a CUDA GPU),
behind one ``Forecaster``, which also carries its calibrated interval (``interval``); the naive
baseline's forecasts are in ``naive``. Pure functions over frames: nothing here knows about MLflow, SQL or the
clock. A ``Forecaster`` knows the feature set it was trained with, so whoever loads one can refuse it if
it cannot build its features, and its family and the device it was fitted on, which are recorded.
"""

from btcmlops.model.forecaster import (
    LIGHTGBM,
    XGBOOST,
    DeviceUnavailableError,
    Forecaster,
    Forecasts,
    ModelConfigurationError,
    check_device,
    import_xgboost,
    train_forecaster,
)
from btcmlops.model.interval import IntervalError, IntervalModel
from btcmlops.model.naive import naive_close, naive_interval

__all__ = [
    "LIGHTGBM",
    "XGBOOST",
    "DeviceUnavailableError",
    "Forecaster",
    "Forecasts",
    "IntervalError",
    "IntervalModel",
    "ModelConfigurationError",
    "check_device",
    "import_xgboost",
    "naive_close",
    "naive_interval",
    "train_forecaster",
]
