"""``FitsAhead``: which months' fits it submits and when, and that a fit made ahead is the serial one."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from btcmlops.calendar import Month
from btcmlops.contest.training import train_on_candles
from btcmlops.features import build_samples
from btcmlops.replay.executors import FitsAhead, worker_count
from btcmlops.replay.run import FrameCandles
from btcmlops.settings import ModelSettings, ReplaySettings
from factories import make_candles

MODEL = ModelSettings(num_boost_round=10, interval_boost_round=10, min_data_in_leaf=20)


@pytest.mark.parametrize(
    ("workers", "threads", "cores", "expected"),
    [(None, 1, 2, 2), (None, 2, 2, 1), (None, 4, 2, 1), (None, 2, 16, 8), (3, 2, 2, 3)],
)
def test_workers_are_the_cores_over_one_fits_threads_unless_set(
    workers: int | None, threads: int, cores: int, expected: int
) -> None:
    replay = ReplaySettings(workers=workers)
    assert worker_count(replay, MODEL.model_copy(update={"num_threads": threads}), cores) == expected


def test_the_first_month_asked_for_submits_it_and_every_later_one() -> None:
    candles = FrameCandles(make_candles("2021-01-01", "2021-05-31 23:00"))
    months = [Month(2021, m) for m in range(1, 5)]
    with ThreadPoolExecutor(1) as pool:
        fits = FitsAhead(pool, candles, months, MODEL)
        forecaster, window, _ = fits(Month(2021, 2))
        assert fits.submitted == [Month(2021, 2), Month(2021, 3), Month(2021, 4)]  # none before February
        assert window.trained_through == "2021-02"
        fits(Month(2021, 4))  # March never asked for: no contest that month
        fits.cancel_unused()  # March's fit is dropped: asked for now, it is submitted again
        fits(Month(2021, 3))
        fits(Month(2021, 5))  # not among the months ahead: submitted when asked
        assert fits.submitted[3:] == [Month(2021, 3), Month(2021, 5)]
    # The same model as a fit made here on the candles the contest reads through February.
    through = candles.read_candles(end=Month(2021, 2).last_hour.to_pydatetime())
    here, here_window, _ = train_on_candles(through, Month(2021, 2), MODEL)
    assert here_window == window
    samples = build_samples(through, MODEL.feature_set).tail(48)
    assert np.array_equal(here.predict_close(samples), forecaster.predict_close(samples))


def test_a_worker_imports_what_a_fit_needs_and_nothing_of_mlflow() -> None:
    """A spawned worker unpickles ``_ready`` and ``train_on_candles``: neither may pull in the replay.

    The package ``btcmlops.replay`` once imported its ``run`` module eagerly, so every worker paid
    for MLflow, the stores and the report (about 2 CPU-seconds more each) before its first fit.
    """
    import subprocess
    import sys

    code = (
        "import sys; from btcmlops.replay.executors import _ready; import btcmlops.contest.training; "
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('mlflow', 'matplotlib', 'plotly') "
        "or m in ('btcmlops.replay.run', 'btcmlops.registry')]; "
        "_ready(0); print(sorted(loaded), 'lightgbm' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[] True"
