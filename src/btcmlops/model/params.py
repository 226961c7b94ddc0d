"""LightGBM's parameters from the model settings, shared by the point booster and the interval's."""

from __future__ import annotations

from typing import Any

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
