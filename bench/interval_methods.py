"""How the interval method was chosen: two candidates, a fresh model each month, 2023-04 to 2024-12.

For each month M, train on every sample whose target is before M (the contest's expanding window),
hold out the newest ``--calibration`` hours, calibrate, and score M's hours against naive's interval
(``btcmlops.model.naive_interval``) with the project's own scoring and Diebold-Mariano code:

- ``cqr``: two LightGBM quantile boosters, conformalised (scaled) on the held-out hours; what ships
  (``btcmlops.model.interval``), called here exactly as the trainer does.
- ``scale``: the point booster plus a booster of |residual|, normalised conformal, symmetric.

    uv run python bench/interval_methods.py [--method cqr|scale] [--calibration 720]

Prints each month's coverage, naive's, interval skill and the one-sided DM p-value, then per year the
mean coverage, the worst month's distance from the level and the months significant at 5 %.
"""

from __future__ import annotations

import argparse
import itertools
import time

import lightgbm as lgb
import numpy as np
import pandas as pd

from btcmlops.contest.scoring import hourly_interval_scores, score_interval, skill
from btcmlops.contest.significance import diebold_mariano
from btcmlops.data.candle_file import read_candle_file
from btcmlops.features import build_samples, get_feature_set, log_return_to_close
from btcmlops.features.frame import TARGET_COLUMN
from btcmlops.model import naive_interval
from btcmlops.model.interval import quantile_params, train_interval
from btcmlops.model.params import lightgbm_params
from btcmlops.settings import EMBEDDED_DATA_FILE, ModelSettings


def _scale_interval(
    train: pd.DataFrame, test: pd.DataFrame, columns: list[str], config: ModelSettings
) -> tuple[np.ndarray, np.ndarray]:
    matrix, label = train[columns].to_numpy(), train[TARGET_COLUMN].to_numpy()
    point = lgb.train(lightgbm_params(config), lgb.Dataset(matrix, label=label), config.num_boost_round)
    residual = np.abs(label - point.predict(matrix))
    held = min(config.interval_calibration_hours, len(train) // 3)
    params = {**quantile_params(config, 0.5), "objective": "regression_l1"}
    scale = lgb.train(
        params, lgb.Dataset(matrix[:-held], label=residual[:-held]), config.interval_boost_round
    )
    ratio = residual[-held:] / np.maximum(scale.predict(matrix[-held:]), 1e-9)
    factor = np.quantile(ratio, min(1.0, np.ceil((held + 1) * config.interval_level) / held))
    test_matrix = test[columns].to_numpy()
    middle, half = point.predict(test_matrix), factor * scale.predict(test_matrix)
    closes = test["close"].to_numpy()
    return log_return_to_close(closes, middle - half), log_return_to_close(closes, middle + half)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=("cqr", "scale"), default="cqr")
    parser.add_argument("--calibration", type=int, default=720)
    args = parser.parse_args()
    config = ModelSettings(interval_calibration_hours=args.calibration)
    level = config.interval_level
    candles = read_candle_file(EMBEDDED_DATA_FILE).candles
    samples = build_samples(candles)
    columns = list(get_feature_set(config.feature_set).columns)
    months = pd.date_range("2023-04-01", "2025-01-01", freq="MS", tz="UTC")
    rows, fitting = [], 0.0
    for start, end in itertools.pairwise(months):
        train = samples.loc[samples["target_time"] < start]
        test = samples.loc[(samples["target_time"] >= start) & (samples["target_time"] < end)]
        began = time.perf_counter()
        if args.method == "cqr":
            model = train_interval(train, columns, config)
            low, high = model.predict_log_return(test[columns].to_numpy())
            lower = log_return_to_close(test["close"].to_numpy(), low)
            upper = log_return_to_close(test["close"].to_numpy(), high)
        else:
            lower, upper = _scale_interval(train, test, columns, config)
        fitting += time.perf_counter() - began
        naive_lower, naive_upper = naive_interval(candles, test.index, level)
        actual = test["actual_close"]
        served = score_interval(actual, lower, upper, level)
        naive = score_interval(actual, naive_lower, naive_upper, level)
        test_result = diebold_mariano(
            hourly_interval_scores(actual, naive_lower, naive_upper, level),
            hourly_interval_scores(actual, lower, upper, level),
        )
        rows.append(
            {
                "month": start.strftime("%Y-%m"),
                "coverage": served.coverage,
                "naive_coverage": naive.coverage,
                "interval_skill": skill(served.interval_score, naive.interval_score),
                "p_value": test_result.p_value,
            }
        )
    frame = pd.DataFrame(rows)
    print(frame.round(3).to_string(index=False))
    for year in ("2023", "2024"):
        months_of = frame.loc[frame["month"].str.startswith(year)]
        naive_coverage = months_of["naive_coverage"].mean()
        print(
            f"{year}: coverage {months_of['coverage'].mean():.3f} (naive {naive_coverage:.3f}), "
            f"worst month {(months_of['coverage'] - level).abs().max():.3f} from the level, interval skill "
            f"{months_of['interval_skill'].mean():+.3f}, significant {(months_of['p_value'] < 0.05).sum()} "
            f"of {len(months_of)}"
        )
    print(f"fitting the intervals: {fitting:.1f} s")


if __name__ == "__main__":
    main()
