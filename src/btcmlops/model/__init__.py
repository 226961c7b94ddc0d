"""The forecaster: train a LightGBM model of the next hour's log return, and predict closes with it.

Pure functions over frames: nothing here knows about MLflow, SQL or the clock. A ``Forecaster`` knows
the feature set it was trained with, so whoever loads one can refuse it if it cannot build its features.
"""

from btcmlops.model.forecaster import Forecaster, train_forecaster

__all__ = ["Forecaster", "train_forecaster"]
