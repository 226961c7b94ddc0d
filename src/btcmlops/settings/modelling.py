"""What is replayed and how it is judged: the data, the model, the contest's rule and the replay."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import (
    BaseModel,
    Field,
    model_validator,
)

EMBEDDED_DATA_FILE = Path(__file__).resolve().parents[1] / "data" / "embedded" / "btc_usdt_1h.csv.gz"
"""The two shipped years (2023-2024) of hourly BTC/USDT candles, the replay's default input."""


class DataSettings(BaseModel):
    """Where candles come from."""

    file: Path = Field(default=EMBEDDED_DATA_FILE, description="Candle file the replay uses by default.")
    symbol: str = Field(
        default="BTCUSDT",
        description="Binance spot symbol `btcmlops data fetch` downloads (unless --symbol).",
    )
    archive_base_url: str = Field(
        default="https://data.binance.vision",
        description=(
            "Base URL of Binance's public data archive (monthly kline zips and CHECKSUM files), where "
            "`btcmlops data fetch` downloads."
        ),
    )
    fetch_timeout_s: float = Field(
        default=10.0, gt=0, description="HTTP timeout of one download by `btcmlops data fetch`."
    )


class ModelSettings(BaseModel):
    """The forecaster: family, device, feature set and hyperparameters, logged with every model.

    The hyperparameters are LightGBM's; the XGBoost family maps them onto its own
    (``btcmlops.model.forecaster.xgboost_params``).
    """

    family: Literal["lightgbm", "xgboost"] = Field(
        default="lightgbm",
        description=(
            "Model library: lightgbm (the default, CPU) or xgboost (the `btcmlops[xgboost]` extra; "
            "can train on a GPU). Either enters the same contest."
        ),
    )
    device: Literal["cpu", "cuda"] = Field(
        default="cpu",
        description=(
            "Where the trainer fits: cpu, or cuda (family xgboost only; an NVIDIA GPU must be visible, "
            "else the trainer refuses to start). Forecasts are always made on the CPU."
        ),
    )
    feature_set: str = Field(
        default="v1",
        description=(
            "Feature set the forecaster is trained on, logged with every model; loading a version with "
            "an unknown feature set is refused."
        ),
    )
    train_window_months: int = Field(
        default=0,
        ge=0,
        description=(
            "Training window of every fit (the replay's and the live trainer's): 0, an expanding window "
            "(every hour from the first candle through the month trained through); N, a rolling window "
            "of the last N months through it. The first champion is fitted on it too."
        ),
    )
    num_boost_round: int = Field(default=300, ge=1, description="Boosting rounds (trees) of one fit.")
    learning_rate: float = Field(default=0.03, gt=0, description="Shrinkage of each tree (XGBoost: eta).")
    num_leaves: int = Field(
        default=15, ge=2, description="Most leaves of one tree (XGBoost: max_leaves, leaf-wise growth)."
    )
    min_data_in_leaf: int = Field(
        default=200, ge=1, description="Fewest training rows in a leaf (XGBoost: min_child_weight)."
    )
    feature_fraction: float = Field(
        default=0.8, gt=0, le=1, description="Share of features each tree sees (XGBoost: colsample_bytree)."
    )
    bagging_fraction: float = Field(
        default=0.8, gt=0, le=1, description="Share of rows each bagging round draws (XGBoost: subsample)."
    )
    bagging_freq: int = Field(
        default=1, ge=0, description="Bag every this many rounds; 0: no bagging (XGBoost: subsample 1)."
    )
    lambda_l2: float = Field(
        default=1.0, ge=0, description="L2 regularisation of leaf values (XGBoost: lambda)."
    )
    interval_level: float = Field(
        default=0.8,
        ge=0.5,
        le=0.99,
        description=(
            "Level of the central interval served with every forecast (0.8: the actual close should fall "
            "inside it in 80 % of hours); from 0.5 to 0.99. Recorded with each version, which keeps it."
        ),
    )
    interval_calibration_hours: int = Field(
        default=720,
        ge=24,
        description=(
            "Newest training hours held out of the interval's quantile boosters to calibrate them "
            "(conformalised quantile regression); the point booster still trains on every hour."
        ),
    )
    interval_boost_round: int = Field(
        default=100, ge=1, description="Boosting rounds of each of the interval's two quantile boosters."
    )
    interval_learning_rate: float = Field(
        default=0.05, gt=0, description="Shrinkage of each tree of the interval's quantile boosters."
    )
    seed: int = Field(default=42, description="Random seed of every fit (bagging and feature sampling).")
    num_threads: int = Field(
        default=1,
        ge=1,
        description=(
            "LightGBM threads (XGBoost: nthread) for one fit. One by default: the trainer shares its "
            "cores with the other services, and spinning OpenMP workers on a busy machine slow a fit "
            "many times over (bench/shared_cpu.py); the forecasts are the same with any number."
        ),
    )

    @model_validator(mode="after")
    def _cuda_needs_xgboost(self) -> Self:
        if self.device == "cuda" and self.family != "xgboost":
            raise ValueError(
                f"device=cuda needs family=xgboost (LightGBM's wheel has no CUDA learner), got "
                f"family={self.family}: set BTCMLOPS_MODEL__FAMILY=xgboost or BTCMLOPS_MODEL__DEVICE=cpu"
            )
        return self


class ContestSettings(BaseModel):
    """The champion/challenger rule."""

    first_train_months: int = Field(
        default=12, ge=1, description="Months of data the first champion (v1) is trained on."
    )
    margin: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description=(
            "Relative improvement of the rule's metric (MAE by default) the challenger needs over the "
            "champion (0.01 = 1 % lower)."
        ),
    )
    require_beat_naive: bool = Field(
        default=False,
        description="Promote only a challenger whose metric (MAE by default) is also below naive's.",
    )
    promotion_rule: Literal["margin", "significance"] = Field(
        default="margin",
        description=(
            "margin: promote when the challenger's metric (MAE by default) is lower by the margin; "
            "significance: the margin rule AND a one-sided Diebold-Mariano test (HAC variance) of the "
            "metric's hourly losses with p < alpha. Both metrics' tests are recorded on every decision."
        ),
    )
    alpha: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description="Significance level of the Diebold-Mariano test under promotion_rule=significance.",
    )
    metric: Literal["mae", "interval_score"] = Field(
        default="mae",
        description=(
            "The score the rule (margin, significance) is applied to: mae (the point forecast's mean "
            "absolute error) or interval_score (the interval's Winkler score). Both are recorded on every "
            "decision either way."
        ),
    )
    min_month_share: float = Field(
        default=0.75,
        gt=0,
        le=1,
        description=(
            "Share of a month's hours that must have a scoreable forecast for a contest to be held; "
            "below it the month is recorded as 'no contest' and the challenger stays in shadow."
        ),
    )


class ReplaySettings(BaseModel):
    """Where a replay (``btcmlops simulate``) fits its models: here, one by one, or on other processes.

    A model's fit depends only on the candles through its month, never on a contest's outcome, so every
    fit of a replay can run at once; MLflow and the registry are still written by the one replaying
    process, in the same order, and the outputs are the same whichever executor fitted them.
    """

    executor: Literal["serial", "processes", "dask"] = Field(
        default="serial",
        description=(
            "serial: each model is fitted in the replaying process when its month closes. processes: "
            "every fit is submitted up front to a pool of local processes. dask: the same on Dask "
            "distributed, a local cluster unless `scheduler` names a running one."
        ),
    )
    workers: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Processes of the pool or of the local Dask cluster. Unset: this machine's cores divided by "
            "the threads of one fit (BTCMLOPS_MODEL__NUM_THREADS), so the fits never oversubscribe them."
        ),
    )
    scheduler: str | None = Field(
        default=None,
        description=(
            "Address of a running Dask scheduler (tcp://host:8786) for executor=dask; its workers must "
            "have this btcmlops installed. Unset: a local cluster of `workers` processes, closed after."
        ),
    )
