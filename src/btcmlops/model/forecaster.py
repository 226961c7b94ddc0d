"""Forecaster of the next-hour log return: LightGBM (the default) or XGBoost (which can train on a GPU)."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pandas as pd

from btcmlops.features import get_feature_set, log_return_to_close
from btcmlops.features.frame import TARGET_COLUMN
from btcmlops.model.interval import IntervalError, IntervalModel, train_interval
from btcmlops.model.params import lightgbm_params
from btcmlops.settings import ConfigurationError, ModelSettings

if TYPE_CHECKING:
    from types import ModuleType

LIGHTGBM = "lightgbm"
XGBOOST = "xgboost"
FAMILY_SETTING = "BTCMLOPS_MODEL__FAMILY"
DEVICE_SETTING = "BTCMLOPS_MODEL__DEVICE"


class ModelConfigurationError(ConfigurationError):
    """The model settings ask for what this installation or machine cannot do (waiting cannot heal it)."""


class DeviceUnavailableError(ModelConfigurationError):
    """``device=cuda`` was asked and XGBoost cannot train on a CUDA device here."""


def xgboost_params(config: ModelSettings) -> dict[str, Any]:
    """XGBoost parameters for ``config``: the LightGBM settings mapped onto their XGBoost meaning.

    Leaf-wise growth capped at ``num_leaves`` (``lossguide``, LightGBM's growth), the L1 objective,
    ``min_data_in_leaf`` as the least hessian in a leaf (one per row under L1), row subsampling each
    round when LightGBM would bag. ``hist`` on both devices, so a CPU and a GPU fit build the same kind
    of trees from the same bins.
    """
    return {
        "objective": "reg:absoluteerror",
        "device": config.device,
        "tree_method": "hist",
        "grow_policy": "lossguide",
        "max_depth": 0,
        "max_leaves": config.num_leaves,
        "eta": config.learning_rate,
        "min_child_weight": config.min_data_in_leaf,
        "colsample_bytree": config.feature_fraction,
        "subsample": config.bagging_fraction if config.bagging_freq > 0 else 1.0,
        "lambda": config.lambda_l2,
        "seed": config.seed,
        "nthread": config.num_threads,
        "verbosity": 1,
    }


def import_xgboost() -> ModuleType:
    """The ``xgboost`` module, or a configuration error saying which extra installs it."""
    try:
        import xgboost
    except ImportError as error:
        raise ModelConfigurationError(
            f"{FAMILY_SETTING}=xgboost needs XGBoost, which is an optional extra: install "
            "`btcmlops[xgboost]` (the image: docker build --build-arg EXTRAS=xgboost)"
        ) from error
    return xgboost


class Forecasts(NamedTuple):
    """A model's closes at T + 1h for a run of hours: the point and the interval's bounds (NaN: none)."""

    predicted: npt.NDArray[np.float64]
    lower: npt.NDArray[np.float64]
    upper: npt.NDArray[np.float64]


@dataclass(frozen=True)
class Forecaster:
    """A trained booster plus the feature set it expects, its family and the device it was fitted on."""

    booster: Any
    """An ``lightgbm.Booster`` or an ``xgboost.Booster`` (set to predict on the CPU)."""
    feature_set: str
    family: str = LIGHTGBM
    device: str = "cpu"
    """Where the booster was fitted (``cpu`` or ``cuda``); it always predicts on the CPU."""
    interval: IntervalModel | None = None
    """The central interval's boosters and calibration (None: a version from before intervals)."""

    @property
    def feature_columns(self) -> tuple[str, ...]:
        return get_feature_set(self.feature_set).columns

    @property
    def interval_level(self) -> float | None:
        """The level of the interval this forecaster serves (None: it has none)."""
        return None if self.interval is None else self.interval.level

    def predict_interval_matrix(
        self, matrix: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """The interval of the log return for each row of a feature matrix (as ``predict_matrix``)."""
        if self.interval is None:
            raise IntervalError("this version was registered before intervals: it has none to serve")
        return self.interval.predict_log_return(matrix)

    def predict_interval(
        self, features: pd.DataFrame
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """The interval (lower, upper) of the close at T + 1h for each row of ``features``."""
        matrix = features.loc[:, list(self.feature_columns)].to_numpy(dtype=np.float64)
        lower, upper = self.predict_interval_matrix(matrix)
        last = features["close"].to_numpy()
        return log_return_to_close(last, lower), log_return_to_close(last, upper)

    def forecast_closes(
        self, matrix: npt.NDArray[np.float64], last_close: npt.NDArray[np.float64]
    ) -> Forecasts:
        """The point and the interval of the close at T + 1h for each row of a feature matrix, from the
        close at T: one arithmetic for the contest, the serving snapshot and vetting, so live serves the
        replay's very numbers. The bounds are NaN for a version with no interval."""
        predicted = log_return_to_close(last_close, self.predict_matrix(matrix))
        if self.interval is None:
            return Forecasts(predicted, np.full(len(predicted), np.nan), np.full(len(predicted), np.nan))
        low, high = self.interval.predict_log_return(matrix)
        return Forecasts(
            predicted, log_return_to_close(last_close, low), log_return_to_close(last_close, high)
        )

    def predict_matrix(self, matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Predict the log return for each row of a feature matrix (columns as ``feature_columns``)."""
        if self.family == XGBOOST:
            return np.asarray(self.booster.inplace_predict(matrix), dtype=np.float64)
        return np.asarray(self.booster.predict(matrix), dtype=np.float64)

    def predict_log_return(self, features: pd.DataFrame) -> npt.NDArray[np.float64]:
        """Predict the log return from the close at T to the close at T + 1h, one per row."""
        return self.predict_matrix(features.loc[:, list(self.feature_columns)].to_numpy(dtype=np.float64))

    def predict_close(self, features: pd.DataFrame) -> npt.NDArray[np.float64]:
        """Predict the close at T + 1h for each row of ``features`` (which carries ``close`` at T)."""
        return log_return_to_close(features["close"].to_numpy(), self.predict_log_return(features))


def train_forecaster(samples: pd.DataFrame, config: ModelSettings) -> Forecaster:
    """Fit a forecaster on ``samples`` (rows of ``build_samples``); the caller chooses the window.

    The objective is L1 because the contest ranks models by MAE: fitting the median return matches
    the score the model is judged on. ``config.family`` picks the library, ``config.device`` where
    XGBoost fits. The interval (``btcmlops.model.interval``) is fitted on the same samples.
    """
    point = _train_point(samples, config)
    interval = train_interval(samples, list(point.feature_columns), config)
    return replace(point, interval=interval)


def _train_point(samples: pd.DataFrame, config: ModelSettings) -> Forecaster:
    if samples.empty:
        raise ValueError("cannot train a forecaster on zero samples")
    spec = get_feature_set(config.feature_set)
    matrix = samples.loc[:, list(spec.columns)].to_numpy(dtype=np.float64)
    label = samples[TARGET_COLUMN].to_numpy(dtype=np.float64)
    if config.family == XGBOOST:
        return _train_xgboost(matrix, label, list(spec.columns), config)
    dataset = lgb.Dataset(matrix, label=label, feature_name=list(spec.columns), free_raw_data=True)
    booster = lgb.train(lightgbm_params(config), dataset, num_boost_round=config.num_boost_round)
    return Forecaster(booster=booster, feature_set=config.feature_set)


def _train_xgboost(
    matrix: npt.NDArray[np.float64], label: npt.NDArray[np.float64], columns: list[str], config: ModelSettings
) -> Forecaster:
    xgb = import_xgboost()
    dataset = xgb.DMatrix(matrix, label=label, feature_names=columns, nthread=config.num_threads)
    with warnings.catch_warnings():
        # XGBoost only warns when it finds no GPU and fits on the CPU instead; the check below refuses.
        warnings.filterwarnings(
            "ignore", message=".*(No visible GPU|Device is changed)", category=UserWarning
        )
        booster = xgb.train(xgboost_params(config), dataset, num_boost_round=config.num_boost_round)
    fitted_on = fitted_device(booster)
    if config.device == "cuda" and not fitted_on.startswith("cuda"):
        raise DeviceUnavailableError(_no_cuda_message(xgb, f"the fit ran on {fitted_on!r}"))
    # Forecasts are made on the CPU wherever the model was fitted: serving runs on CPU nodes, and
    # numpy input to a CUDA booster would be copied to the GPU for every call.
    booster.set_param({"device": "cpu"})
    return Forecaster(booster=booster, feature_set=config.feature_set, family=XGBOOST, device=config.device)


def fitted_device(booster: Any) -> str:
    """The device an XGBoost booster's fit ran on, from its configuration (XGBoost falls back silently)."""
    config = json.loads(booster.save_config())
    return str(config["learner"]["generic_param"]["device"])


def check_device(config: ModelSettings) -> str:
    """Make sure the model settings can train here; return the device a fit will use.

    ``cpu`` always can (once the family's library is installed). For ``cuda``, XGBoost must be a CUDA
    build and a tiny probe fit must really run on a CUDA device: without one XGBoost only warns and
    fits on the CPU, which would record a GPU model that never saw a GPU.

    Raises:
        ModelConfigurationError: the family's library is not installed.
        DeviceUnavailableError: ``cuda`` was asked and cannot be had; the message names the setting.
    """
    if config.family != XGBOOST:
        return config.device
    xgb = import_xgboost()
    if config.device != "cuda":
        return config.device
    if not xgb.build_info().get("USE_CUDA", False):
        raise DeviceUnavailableError(_no_cuda_message(xgb, "this XGBoost is a CPU-only build"))
    probe = np.arange(64, dtype=np.float64).reshape(32, 2)
    params = {"device": "cuda", "tree_method": "hist", "nthread": 1, "verbosity": 0}
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=".*(No visible GPU|Device is changed)", category=UserWarning
        )
        try:
            booster = xgb.train(params, xgb.DMatrix(probe, label=probe[:, 0]), num_boost_round=1)
        except xgb.core.XGBoostError as error:
            raise DeviceUnavailableError(_no_cuda_message(xgb, f"a probe fit failed: {error}")) from error
    fitted_on = fitted_device(booster)
    if not fitted_on.startswith("cuda"):
        raise DeviceUnavailableError(_no_cuda_message(xgb, "XGBoost finds no visible CUDA device"))
    return fitted_on


def _no_cuda_message(xgb: ModuleType, reason: str) -> str:
    return (
        f"{DEVICE_SETTING}=cuda but XGBoost {xgb.__version__} cannot train on a GPU here: {reason}. "
        f"Run on a machine with an NVIDIA GPU and driver (Kubernetes: an nvidia.com/gpu limit), or set "
        f"{DEVICE_SETTING}=cpu"
    )
