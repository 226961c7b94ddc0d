"""LightGBM forecaster of the next-hour log return."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pandas as pd

from btcmlops.features import get_feature_set, log_return_to_close
from btcmlops.features.frame import TARGET_COLUMN
from btcmlops.settings import ModelSettings


def lightgbm_params(config: ModelSettings) -> dict[str, Any]:
    """LightGBM parameters for ``config``; deterministic so the same data gives the same model."""
    return {
        "objective": "regression_l1",
        "learning_rate": config.learning_rate,
        "num_leaves": config.num_leaves,
        "min_data_in_leaf": config.min_data_in_leaf,
        "feature_fraction": config.feature_fraction,
        "bagging_fraction": config.bagging_fraction,
        "bagging_freq": config.bagging_freq,
        "lambda_l2": config.lambda_l2,
        "seed": config.seed,
        "num_threads": config.num_threads,
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
    }


@dataclass(frozen=True)
class Forecaster:
    """A trained booster plus the feature set it expects."""

    booster: lgb.Booster
    feature_set: str

    @property
    def feature_columns(self) -> tuple[str, ...]:
        return get_feature_set(self.feature_set).columns

    def predict_log_return(self, features: pd.DataFrame) -> npt.NDArray[np.float64]:
        """Predict the log return from the close at T to the close at T + 1h, one per row."""
        matrix = features.loc[:, list(self.feature_columns)].to_numpy(dtype=np.float64)
        return np.asarray(self.booster.predict(matrix), dtype=np.float64)

    def predict_close(self, features: pd.DataFrame) -> npt.NDArray[np.float64]:
        """Predict the close at T + 1h for each row of ``features`` (which carries ``close`` at T)."""
        return log_return_to_close(features["close"].to_numpy(), self.predict_log_return(features))


def train_forecaster(samples: pd.DataFrame, config: ModelSettings) -> Forecaster:
    """Fit a forecaster on ``samples`` (rows of ``build_samples``); the caller chooses the window.

    The objective is L1 because the contest ranks models by MAE: fitting the median return matches
    the score the model is judged on.
    """
    if samples.empty:
        raise ValueError("cannot train a forecaster on zero samples")
    spec = get_feature_set(config.feature_set)
    dataset = lgb.Dataset(
        samples.loc[:, list(spec.columns)].to_numpy(dtype=np.float64),
        label=samples[TARGET_COLUMN].to_numpy(dtype=np.float64),
        feature_name=list(spec.columns),
        free_raw_data=True,
    )
    booster = lgb.train(lightgbm_params(config), dataset, num_boost_round=config.num_boost_round)
    return Forecaster(booster=booster, feature_set=config.feature_set)
