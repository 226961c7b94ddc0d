"""GPU check: XGBoost fitted on the CPU and on CUDA, same data, same settings; timings and agreement.

Run by hand on a machine with an NVIDIA GPU (``make bench-gpu``; under a minute; an H200 run on
2026-11-26 took 43 s with the package install, figures in docs/measurements.md). It trains the
forecaster (family xgboost) on the shipped candles through ``--through`` on the CPU and on ``cuda``,
forecasts the following month with each, and prints both fit times and MAEs. Agreement is judged twice,
because the project's hyperparameters sample rows and columns (``bagging_fraction``, ``feature_fraction``)
and XGBoost's CUDA learner draws those samples from its own random generator, not the CPU's: a CUDA fit
is then another draw, like another seed, and cannot match the CPU's forecast for forecast.

- **Sampling off** (both fractions 1): what still differs is the arithmetic and the histogram bins (the
  CUDA learner sketches its own bin edges); the largest relative gap between the two forecasts' closes
  must be within ``--tolerance``.
- **The project's hyperparameters**: the CPU-vs-CUDA gap must be no larger than ``--seed-factor`` times
  the largest gap between the CPU fit and ``--seeds`` CPU fits that differ from it only in their seed.

Exit status: 0 when both hold, 1 when one does not, 2 when CUDA cannot be had (the same check the trainer
makes at start). ``--cpu-only`` fits twice on the CPU instead, to check this script anywhere.

    uv run python bench/gpu_check.py [--through 2024-11] [--tolerance 1e-3] [--seed-factor 1.5]
                                     [--seeds 3] [--threads 1] [--cpu-only]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import numpy.typing as npt
import pandas as pd

from btcmlops.calendar import Month
from btcmlops.contest.scoring import score
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
    parser.add_argument("--tolerance", type=float, default=1e-3, help="Largest relative gap, sampling off.")
    parser.add_argument(
        "--seed-factor", type=float, default=1.5, help="Largest CPU-vs-CUDA gap, in CPU seed-to-seed gaps."
    )
    parser.add_argument("--seeds", type=int, default=3, help="Other seeds fitted on the CPU.")
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
    gap = _max_relative(other_close, cpu_close)
    reseeded = [
        _fit(rows, cpu.model_copy(update={"seed": cpu.seed + k}))[0].predict_close(test)
        for k in range(1, arguments.seeds + 1)
    ]
    seed_gap = max(_max_relative(close, cpu_close) for close in reseeded)
    print(f"fit cpu ({arguments.threads} thread(s)): {cpu_s:7.2f} s")
    print(f"fit {label} [{device}]: {other_s:7.2f} s  ({cpu_s / other_s:.2f}x the CPU's speed)")

    def mae(close: npt.NDArray[np.float64]) -> float:  # as the contest scores it
        return score(test["actual_close"], close, test["close"]).mae

    reseeded_mae = ", ".join(f"{mae(close):.2f}" for close in reseeded)
    print(f"MAE on {scored}: cpu {mae(cpu_close):.2f}, {label} {mae(other_close):.2f}, "
          f"cpu with {arguments.seeds} other seeds {reseeded_mae} USDT")  # fmt: skip
    print(f"project hyperparameters, max relative forecast difference: {label} {gap:.3e}, "
          f"cpu seed to seed (largest of {arguments.seeds}) {seed_gap:.3e}; "
          f"allowed {arguments.seed_factor:g}x that")  # fmt: skip

    no_sampling = {"bagging_fraction": 1.0, "bagging_freq": 0, "feature_fraction": 1.0}
    cpu_exact, _ = _fit(rows, cpu.model_copy(update=no_sampling))
    other_exact, _ = _fit(rows, other.model_copy(update=no_sampling))
    exact_gap = _max_relative(other_exact.predict_close(test), cpu_exact.predict_close(test))
    print(f"sampling off, max relative forecast difference: {exact_gap:.3e}; "
          f"tolerance {arguments.tolerance:g}")  # fmt: skip

    disagreements = []
    if exact_gap > arguments.tolerance:
        disagreements.append("with sampling off the two fits forecast differently beyond the tolerance")
    if gap > arguments.seed_factor * seed_gap:
        disagreements.append(f"{label} differs from the CPU by more than {arguments.seed_factor:g} seed gaps")
    for disagreement in disagreements:
        print(f"DISAGREE: {disagreement}", file=sys.stderr)
    if disagreements:
        return 1
    print("agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
