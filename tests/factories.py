"""Synthetic candle series whose behaviour the tests know in advance (imported via conftest)."""

from __future__ import annotations

import copy
import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from btcmlops.replay import ReplayResult, run_replay
from btcmlops.settings import Settings

ReplayOf = Callable[..., ReplayResult]
"""The session's ``replay_of`` fixture (tests/conftest.py): ``replay_of(home, start, end, **options)``."""
OncePerRun = Callable[[str, Callable[[Path], Any]], Any]
"""The session's ``once_per_run`` fixture (tests/conftest.py): ``once_per_run(key, make)``."""


def make_candles(
    start: str = "2021-01-01",
    end: str = "2021-05-31 23:00",
    *,
    seed: int = 7,
    ar: float | list[tuple[str, float]] = 0.0,
    noise: float = 0.002,
    drop: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Hourly candles in canonical form whose log returns follow an AR(1) process.

    ``ar`` is one coefficient, or a list of (first hour, coefficient) regimes: a market whose next
    return is predictable from the last one, in a direction that can flip, so who should win a
    contest is known. ``drop`` removes hours (gaps).
    """
    times = pd.date_range(pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC"), freq="h").astype(
        "datetime64[ns, UTC]"
    )
    regimes = [(start, ar)] if isinstance(ar, float) else ar
    coefficient = np.zeros(len(times))
    for first, value in regimes:
        coefficient[times >= pd.Timestamp(first, tz="UTC")] = value
    rng = np.random.default_rng(seed)
    shocks = rng.normal(0.0, noise, len(times))
    returns = np.zeros(len(times))
    for i in range(1, len(times)):
        returns[i] = coefficient[i] * returns[i - 1] + shocks[i]
    close = 20_000.0 * np.exp(np.cumsum(returns))
    open_ = np.concatenate([[close[0]], close[:-1]])
    spread = np.abs(rng.normal(0.0, noise / 2, len(times)))
    frame = pd.DataFrame(
        {
            "open_time": times,
            "open": open_,
            "high": np.maximum(open_, close) * (1 + spread),
            "low": np.minimum(open_, close) * (1 - spread),
            "close": close,
            "volume": rng.uniform(50, 150, len(times)),
        }
    )
    if drop:
        frame = frame.loc[~frame["open_time"].isin(pd.to_datetime(list(drop), utc=True))]
    return frame.reset_index(drop=True)


def write_project_csv(frame: pd.DataFrame, path: str) -> None:
    """Write ``frame`` in this project's CSV format."""
    out = frame.copy()
    out["open_time"] = out["open_time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out.to_csv(path, index=False, float_format="%.6f")


def share_mlflow_template(home: Path, mlflow_cache: Path) -> Path:
    """``home``, its MLflow template cache the run's (the ``mlflow_cache`` fixture): a replay or a
    command there copies the empty embedded store instead of building it.

    A process builds the store's empty schema once per home (``<home>/cache``, ``bootstrap.tracking``)
    by running MLflow's whole migration history: seconds of SQLite commits, each synced to disk. Every
    test's home is new, so without this each replay in the run built it again.
    """
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "cache").exists():
        (home / "cache").symlink_to(mlflow_cache, target_is_directory=True)
    return home


def small_replay(
    home: Path,
    candles: pd.DataFrame,
    *,
    num_boost_round: int = 20,
    replay: dict[str, Any] | None = None,
    mlflow_cache: Path | None = None,
) -> ReplayResult:
    """A replay of ``candles`` (from 2021-01) with v1 trained on two months and small models: the
    stores and registry a test of the serving side starts from, made in seconds. ``replay``: the
    replay's settings (its executor), serial by default. ``mlflow_cache``: the run's template cache
    (``share_mlflow_template``)."""
    if mlflow_cache is not None:
        share_mlflow_template(home, mlflow_cache)
    data = home / "candles.csv"
    write_project_csv(candles, str(data))
    settings = Settings(
        home=home,
        contest={"first_train_months": 2},
        model={"num_boost_round": num_boost_round, "min_data_in_leaf": 20},
        replay=replay or {},
    )
    return run_replay(settings, data, home / "out")


def copy_replay(replay: ReplayResult, home: Path) -> ReplayResult:
    """A private copy of ``replay`` under ``home/out``: its stores (price store, MLflow database), summary
    and report copied, so a test may write to them (clock, prediction log, aliases, tags) without touching
    another test's. The model artifacts are not copied: the MLflow database names them by absolute path,
    they are written once by the replay and only read after, so ``out/mlartifacts`` links to the original.
    """
    out = home / "out"
    out.mkdir(parents=True)
    for source in replay.out_dir.iterdir():
        if source.name == "mlartifacts":
            (out / source.name).symlink_to(source, target_is_directory=True)
        elif source.is_dir():
            shutil.copytree(source, out / source.name)
        else:
            shutil.copy2(source, out / source.name)
    for name in ("candles.csv",):  # the data file the replay read, for tests that read it again
        if (replay.out_dir.parent / name).exists():
            shutil.copy2(replay.out_dir.parent / name, home / name)

    def moved(path: Path) -> Path:
        return out / path.relative_to(replay.out_dir)

    return dataclasses.replace(
        replay,
        out_dir=out,
        summary=copy.deepcopy(replay.summary),
        predictions_path=moved(replay.predictions_path),
        summary_path=moved(replay.summary_path),
        report_html=moved(replay.report_html),
        report_png=moved(replay.report_png),
        tracking_uri=replay.tracking_uri.replace(str(replay.out_dir), str(out)),
        ui_command=replay.ui_command.replace(str(replay.out_dir), str(out)),
    )
