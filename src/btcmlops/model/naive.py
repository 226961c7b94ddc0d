"""The naive baseline's forecasts: the last close as the point, the last month's moves as the interval.

Naive is what a model must beat to be worth serving. Its point forecast is the close at T. Its
interval at level L, for hour T + 1h, is the trailing 30 days' empirical quantiles of hourly log
returns applied to the close at T:

    lower = close_T * exp(q_{(1-L)/2}),  upper = close_T * exp(q_{(1+L)/2})

where the quantiles (numpy's linear rule) are taken over the log returns log(close_t / close_{t-1}) of
every hour t in (T - 720 h, T] whose previous hour exists (a gap is skipped, never bridged), and at
least ``NAIVE_LEAST_RETURNS`` of them must exist (else there is no naive interval for that hour). Only
closes known at T are used.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

NAIVE_WINDOW_HOURS = 720
NAIVE_LEAST_RETURNS = 24


def naive_close(last_close: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The naive point forecast of the close at T + 1h: the close at T."""
    return np.asarray(last_close, dtype=np.float64)


def naive_interval(
    candles: pd.DataFrame, at: pd.DatetimeIndex | pd.Series, level: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Naive's interval of the close one hour after each hour in ``at``, from ``candles`` (nan: none).

    ``candles`` are canonical (``open_time`` ascending, unique, UTC) and must include every hour in
    ``at`` and the 720 before them; candles after an hour are never read for it (the windows trail).
    """
    open_time = pd.DatetimeIndex(candles["open_time"])
    close = candles["close"].to_numpy(dtype=np.float64)
    returns = np.full(len(close), np.nan)
    if len(close) > 1:
        consecutive = (open_time[1:] - open_time[:-1]) == pd.Timedelta(hours=1)
        returns[1:] = np.where(consecutive, np.log(close[1:] / close[:-1]), np.nan)
    series = pd.Series(returns, index=open_time)
    window = series.rolling(f"{NAIVE_WINDOW_HOURS}h", min_periods=NAIVE_LEAST_RETURNS)
    tail = (1.0 - level) / 2.0
    lower_q = window.quantile(tail)
    upper_q = window.quantile(1.0 - tail)
    hours = pd.DatetimeIndex(at)
    last = pd.Series(close, index=open_time).reindex(hours).to_numpy()
    lower = last * np.exp(lower_q.reindex(hours).to_numpy())
    upper = last * np.exp(upper_q.reindex(hours).to_numpy())
    return lower, upper
