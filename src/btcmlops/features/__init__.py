"""Features and targets of the next-hour forecaster.

This package owns the rule that keeps every forecast honest: the features of hour T are computed from
candles with open time <= T only, and a sample exists only where its whole window (and, for training,
its target hour) is made of consecutive hours. A window or a target that would bridge a missing hour is
dropped, never filled: a gap is a fact about the market (an exchange halt), not a value to invent.
"""

from btcmlops.features.frame import (
    FEATURE_SETS,
    FeatureSet,
    UnknownFeatureSetError,
    build_features,
    build_samples,
    feature_matrix,
    get_feature_set,
    log_return_to_close,
)

__all__ = [
    "FEATURE_SETS",
    "FeatureSet",
    "UnknownFeatureSetError",
    "build_features",
    "build_samples",
    "feature_matrix",
    "get_feature_set",
    "log_return_to_close",
]
