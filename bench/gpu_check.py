"""GPU check: XGBoost fitted on the CPU and on CUDA, same data, same settings; timings and agreement.

Run by hand on a machine with an NVIDIA GPU (``make bench-gpu``; well under 3 minutes). It trains the
forecaster (family xgboost, the project's default hyperparameters) on the shipped candles through
``--through`` on the CPU and on ``cuda``, forecasts the following month with each, and prints both fit
times and the largest relative difference between the two models' forecast closes. Exit status: 0 when
they agree within ``--tolerance``, 1 when they do not, 2 when CUDA cannot be had (the same check the
trainer makes at start). ``--cpu-only`` fits twice on the CPU instead, to check this script anywhere.

    uv run python bench/gpu_check.py [--through 2024-11] [--tolerance 1e-3] [--threads 1] [--cpu-only]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import numpy.typing as npt
import pandas as pd

from btcmlops.calendar import Month
from btcmlops.contest.training import month_samples, training_samples
from btcmlops.data import read_candle_file
from btcmlops.features import build_samples
from btcmlops.model import DeviceUnavailableError, Forecaster, check_device, train_forecaster
from btcmlops.settings import ModelSettings, Settings


def _fit(rows: pd.DataFrame, config: ModelSettings) -> tuple[Forecaster, float]:
    started = time.perf_counter()
    forecaster = train_forecaster(rows, config)
    return forecaster, time.perf_counter() - started


def _max_relative(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), np.finfo(np.float64).tiny)))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--through", default="2024-11", help="Last month trained on (YYYY-MM).")
    parser.add_argument("--tolerance", type=float, default=1e-3, help="Largest relative forecast gap.")
    parser.add_argument("--threads", type=int, default=1, help="nthread of the CPU fit.")
    parser.add_argument("--cpu-only", action="store_true", help="Compare two CPU fits (no GPU needed).")
    arguments = parser.parse_args()

    settings = Settings()
    base = settings.model.model_copy(update={"family": "xgboost", "num_threads": arguments.threads})
    cpu = base.model_copy(update={"device": "cpu"})
    other = cpu if arguments.cpu_only else base.model_copy(update={"device": "cuda"})
    label = "cpu (again)" if arguments.cpu_only else "cuda"
    try:
        device = check_device(other)  # also warms CUDA up, so the timed fit is the fit alone
    except DeviceUnavailableError as error:
        print(f"no GPU: {error}", file=sys.stderr)
        return 2

    year, month = (int(part) for part in arguments.through.split("-"))
    through = Month(year, month)
    scored = through.next()
    candles = read_candle_file(settings.data.file).candles
    samples = build_samples(candles, cpu.feature_set)
    rows, test = training_samples(samples, through), month_samples(samples, scored)
    print(f"xgboost, {cpu.num_boost_round} rounds: {len(rows):,} rows through {through}, scored on {scored}")

    cpu_model, cpu_s = _fit(rows, cpu)
    other_model, other_s = _fit(rows, other)
    cpu_close, other_close = cpu_model.predict_close(test), other_model.predict_close(test)
    actual = test["actual_close"].to_numpy()
    gap = _max_relative(other_close, cpu_close)
    returns = other_model.predict_log_return(test) - cpu_model.predict_log_return(test)
    gap_return = float(np.max(np.abs(returns)))
    print(f"fit cpu ({arguments.threads} thread(s)): {cpu_s:7.2f} s")
    print(f"fit {label} [{device}]: {other_s:7.2f} s  ({cpu_s / other_s:.2f}x the CPU's speed)")
    print(f"MAE on {scored}: cpu {np.mean(np.abs(cpu_close - actual)):.2f}, {label} "
          f"{np.mean(np.abs(other_close - actual)):.2f} USDT")  # fmt: skip
    print(f"max relative forecast difference: {gap:.3e} (log return: {gap_return:.3e}); "
          f"tolerance {arguments.tolerance:g}")  # fmt: skip
    if gap > arguments.tolerance:
        print("DISAGREE: the two fits forecast differently beyond the tolerance", file=sys.stderr)
        return 1
    print("agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
