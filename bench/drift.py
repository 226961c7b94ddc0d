"""Benchmark: what the features' drift costs, live in the service and once per contest.

On the shipped candles (2023-2024) with a small real champion trained on 2023: the service's first
reading (the reference's deciles taken from a year of hours, then the last 7 sim days), a reading after
the window moved an hour (reference cached), a round where nothing moved, and a scrape of the gauge;
then the contest's share: the bins from 23 months of training samples and December 2024's PSI.

    uv run python bench/drift.py [--repeat 200]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pandas as pd

from btcmlops.calendar import Month
from btcmlops.contest.training import month_samples, train_through
from btcmlops.data import read_candle_file
from btcmlops.features import build_samples, get_feature_set
from btcmlops.features.drift import reference_bins
from btcmlops.registry import ModelVersionInfo
from btcmlops.serving.drift import DriftCollector, LiveDrift
from btcmlops.serving.snapshot import ServedModel, SnapshotBuilder
from btcmlops.settings import ModelSettings, Settings


def _median_ms(work: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    settings = Settings()
    candles = read_candle_file(settings.data.file).candles
    samples = build_samples(candles, settings.model.feature_set)
    model = ModelSettings(num_boost_round=5)
    forecaster, window, _ = train_through(samples, candles, Month.parse("2023-12"), model)
    info = ModelVersionInfo(1, "bench", model.feature_set, window, None, ("champion",))
    builder = SnapshotBuilder(model.feature_set)
    builder.add_candles(candles)
    snapshot = builder.use_model(ServedModel(info=info, forecaster=forecaster))
    now = datetime(2024, 6, 15, 12, tzinfo=UTC)

    first = _median_ms(lambda: LiveDrift().update(snapshot, now), max(args.repeat // 10, 5))
    drift = LiveDrift()
    drift.update(snapshot, now)
    hours = iter(range(1, 10**6))
    moved = _median_ms(lambda: drift.update(snapshot, now + timedelta(hours=next(hours))), args.repeat)
    still = drift.reading.current_end if drift.reading else now  # type: ignore[union-attr]
    idle = _median_ms(lambda: drift.update(snapshot, still + timedelta(hours=1, minutes=30)), args.repeat)
    collector = DriftCollector(drift)
    scrape = _median_ms(lambda: list(collector.collect()), args.repeat)
    assert drift.reading is not None

    columns = list(get_feature_set(model.feature_set).columns)
    reference = samples.loc[samples["target_time"] <= pd.Timestamp("2024-11-30 23:00", tz="UTC"), columns]
    month = month_samples(samples, Month.parse("2024-12"))[columns]
    contest = _median_ms(
        lambda: reference_bins(reference.to_numpy(), columns).psi(month.to_numpy()), max(args.repeat // 10, 5)
    )

    rows = drift.reading.reference_hours
    print(f"live drift, {rows} reference hours x {len(columns)} features, median ms:")
    print(f"  first reading (reference deciles + 7 days): {first:.2f}")
    print(f"  window moved an hour (reference cached):    {moved:.3f}")
    print(f"  nothing moved:                              {idle:.4f}")
    print(f"  scrape of btcmlops_feature_drift_psi:       {scrape:.4f}")
    print(f"contest, {len(reference)} training samples vs {len(month)} shadow hours: {contest:.2f} ms")


if __name__ == "__main__":
    main()
