"""Generate N years of hourly BTC-like OHLCV candles, seeded, in the shipped file's format.

The replay's growth benchmark (``bench/growth.py``) needs histories longer than the shipped two years.
Real longer files exist, but a generated one is the same on every machine, of any length, and carries
no licence. What matters for the replay's cost is the number of hours; what matters for its forecasts
to mean anything is that the series looks like hourly BTC: returns whose volatility clusters (calm
weeks, then storms), fat tails, wicks that widen with volatility, volume that follows volatility.

The model, fitted roughly to the shipped 2023-2024 candles (17,543 hours; ``--fit`` refits it):

* Hourly log returns ``r_t = sigma_t * z_t``, GARCH(1,1): ``sigma_t^2 = omega + alpha * r_{t-1}^2 +
  beta * sigma_{t-1}^2`` with ``alpha`` 0.259 and ``beta`` 0.716 (Gaussian quasi-maximum likelihood,
  consistent whatever the innovations' law). ``omega`` targets the sample's variance,
  ``var * (1 - alpha - beta)``, with var 2.61e-5 (0.51 % an hour): the QMLE's own omega implies three
  times the sample variance, an artefact of a few extreme hours. No drift: the period's +87 % a year
  compounded over ten years would put the price in the millions.
* ``z_t`` Student-t with 5 degrees of freedom scaled to unit variance. The standardized residuals'
  own fit says 2.7 (infinite variance); 5 keeps the tails fat and the kurtosis finite.
* ``open`` = the previous ``close`` (Binance's opens equal the last close but for rounding).
* Wicks: ``high = max(open, close) * exp(sigma_t * U)``, ``low = min(open, close) * exp(-sigma_t * D)``
  with ``U``, ``D`` exponential of means 0.34 and 0.38 (the shipped wicks over ``sigma_t``: means
  0.34 and 0.38, standard deviations 0.37 and 0.41).
* Volume (BTC): ``log v_t = 0.888 + 0.847 log v_{t-1} + 0.346 |z_t| + N(0, 0.45)`` (least squares on
  the shipped hours; mean log volume 7.28).

Prices are written with two decimals and volumes with five, as the shipped file; rounding is
monotonic, so ``high >= max(open, close)`` and ``low <= min(open, close)`` survive it. A ``.gz`` name
is gzip-compressed with no timestamp in its header: one seed, one file, byte for byte.

    uv run python bench/generate_candles.py --years 10 --seed 1 --out out/bench/candles-10y.csv.gz
    uv run python bench/generate_candles.py --fit src/btcmlops/data/embedded/btc_usdt_1h.csv.gz
"""

from __future__ import annotations

import argparse
import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

START = pd.Timestamp("2015-01-01", tz="UTC")
"""The first hour of a generated file: ten years end on 2024-12-31, where the shipped file ends."""


@dataclass(frozen=True)
class CandleModel:
    """The generator's parameters (module docstring: what each is and where it comes from)."""

    alpha: float = 0.259
    beta: float = 0.716
    variance: float = 2.61e-5
    """The returns' unconditional variance (omega is set from it: variance targeting)."""
    degrees_of_freedom: float = 5.0
    up_wick: float = 0.34
    down_wick: float = 0.38
    volume_intercept: float = 0.888
    volume_persistence: float = 0.847
    volume_shock: float = 0.346
    volume_noise: float = 0.45
    first_price: float = 16_530.0
    """The shipped file's first close."""

    @property
    def omega(self) -> float:
        """The GARCH constant that makes ``variance`` the unconditional variance."""
        return self.variance * (1 - self.alpha - self.beta)


def generate_candles(
    years: int, seed: int, model: CandleModel | None = None, start: pd.Timestamp = START
) -> pd.DataFrame:
    """Return every hour of ``years`` calendar years from ``start``, the same for the same seed.

    Returns:
        A frame with the candle columns (``open_time`` tz-aware UTC, float64 OHLCV), rounded as the
        file stores them, so that the frame and the file read back agree.
    """
    model = model or CandleModel()
    times = pd.date_range(start, start + pd.DateOffset(years=years), freq="h", inclusive="left", unit="ns")
    hours = len(times)
    rng = np.random.default_rng(seed)
    dof = model.degrees_of_freedom
    shocks = rng.standard_t(dof, hours) * np.sqrt((dof - 2) / dof)  # unit variance
    returns = np.empty(hours)
    sigmas = np.empty(hours)
    variance = model.variance
    for hour in range(hours):  # GARCH's recursion is sequential by nature (0.1 s for ten years)
        sigmas[hour] = np.sqrt(variance)
        returns[hour] = sigmas[hour] * shocks[hour]
        variance = model.omega + model.alpha * returns[hour] ** 2 + model.beta * variance
    closes = model.first_price * np.exp(np.cumsum(returns))
    opens = np.concatenate(([model.first_price], closes[:-1]))
    highs = np.maximum(opens, closes) * np.exp(sigmas * rng.exponential(model.up_wick, hours))
    lows = np.minimum(opens, closes) * np.exp(-sigmas * rng.exponential(model.down_wick, hours))
    noise = rng.normal(0.0, model.volume_noise, hours)
    log_volume = np.empty(hours)
    level = model.volume_intercept / (1 - model.volume_persistence)  # the stationary mean, roughly
    for hour in range(hours):
        level = (
            model.volume_intercept
            + model.volume_persistence * level
            + model.volume_shock * abs(shocks[hour])
            + noise[hour]
        )
        log_volume[hour] = level
    return pd.DataFrame(
        {
            "open_time": times,
            "open": opens.round(2),
            "high": highs.round(2),
            "low": lows.round(2),
            "close": closes.round(2),
            "volume": np.exp(log_volume).round(5),
        }
    )


def write_candles(candles: pd.DataFrame, path: Path) -> Path:
    """Write ``candles`` as the project's CSV (gzip-compressed, reproducibly, for a ``.gz`` name)."""
    text = candles.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%SZ", float_format="%.10g")
    data = text.encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, mtime=0) if path.name.endswith(".gz") else data)
    return path


def fit(path: Path) -> None:
    """Print the statistics the parameters above were read from, for a candle file ``path``."""
    from scipy.optimize import minimize

    from btcmlops.data import read_candle_file

    candles = read_candle_file(path).candles
    opens, highs, lows, closes = (candles[name].to_numpy() for name in ("open", "high", "low", "close"))
    returns = np.diff(np.log(closes))
    errors = returns - returns.mean()

    def variances(omega: float, alpha: float, beta: float) -> np.ndarray:
        out = np.empty_like(errors)
        out[0] = errors.var()
        for hour in range(1, len(errors)):
            out[hour] = omega + alpha * errors[hour - 1] ** 2 + beta * out[hour - 1]
        return out

    def negative_log_likelihood(parameters: np.ndarray) -> float:
        omega, alpha, beta = parameters
        if omega <= 0 or alpha < 0 or beta < 0 or alpha + beta >= 1:
            return 1e10
        var = variances(omega, alpha, beta)
        return float(0.5 * np.sum(np.log(var) + errors**2 / var))

    found = minimize(negative_log_likelihood, [errors.var() * 0.05, 0.08, 0.9], method="Nelder-Mead")
    omega, alpha, beta = found.x
    sigma = np.sqrt(variances(omega, alpha, beta))
    shocks = errors / sigma
    up = np.log(highs[1:] / np.maximum(opens[1:], closes[1:])) / sigma
    down = np.log(np.minimum(opens[1:], closes[1:]) / lows[1:]) / sigma
    log_volume = np.log(np.maximum(candles["volume"].to_numpy(), 1e-3))  # a halted hour trades 0
    design = np.column_stack([np.ones(len(shocks)), log_volume[:-1], np.abs(shocks)])
    volume_fit, *_ = np.linalg.lstsq(design, log_volume[1:], rcond=None)
    residual = log_volume[1:] - design @ volume_fit
    print(f"hours {len(candles)}, mean return {returns.mean():.3g}, variance {errors.var():.3g}")
    print(f"GARCH(1,1) QMLE: omega {omega:.3g}, alpha {alpha:.3f}, beta {beta:.3f}")
    print(f"wicks over sigma: up {up.mean():.2f} (sd {up.std():.2f}), ", end="")
    print(f"down {down.mean():.2f} (sd {down.std():.2f})")
    print(
        "log volume: intercept {:.3f}, persistence {:.3f}, |z| {:.3f}, noise sd {:.2f}".format(
            *volume_fit, residual.std()
        )
    )
    squared = errors**2
    print(f"autocorrelation of squared returns at lag 1: {np.corrcoef(squared[1:], squared[:-1])[0, 1]:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("out/bench/candles.csv.gz"))
    parser.add_argument("--fit", type=Path, metavar="FILE", help="print the statistics of FILE and exit")
    args = parser.parse_args()
    if args.fit:
        fit(args.fit)
        return
    candles = generate_candles(args.years, args.seed)
    path = write_candles(candles, args.out)
    print(f"{path}: {len(candles)} hours from {START:%Y-%m-%d}, seed {args.seed}")


if __name__ == "__main__":
    main()
