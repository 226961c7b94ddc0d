"""Benchmark: what the feed costs once the replay is over and the stack stays up.

A SQLite price store, a clock (48 sim h/s, its end at the candles' last close, as ``btcmlops feed``
sets it) past the end of a day of candles, and ``MarketFeed.run`` on a thread for
``--seconds``: reports the clock reads a second (the store's ``read_clock``, counted) and the CPU the
process spent a real second (``time.process_time``, the feed's thread and the store's work).

    uv run python bench/feed_idle.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from generate_candles import generate_candles

from btcmlops.clock import start_clock
from btcmlops.services.feed import MarketFeed
from btcmlops.store import PriceStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    candles = generate_candles(1, seed=1).head(24)  # a day of the benchmarks' seeded candles
    with tempfile.TemporaryDirectory() as home:
        store = PriceStore(f"sqlite:///{Path(home) / 'prices.db'}")
        store.migrate()
        now = datetime.now(UTC)
        end_at = (candles["open_time"].iloc[-1] + pd.Timedelta(hours=1)).to_pydatetime()  # as `btcmlops feed`
        first = candles["open_time"].iloc[0].to_pydatetime()
        clock = start_clock(first, 48.0, now - timedelta(hours=1), end_at=end_at)
        store.write_clock(clock)
        feed = MarketFeed(store, candles)
        feed.step(datetime.now(UTC))  # every candle written: the replay is over
        reads = 0
        read_clock = store.read_clock

        def counted():  # type: ignore[no-untyped-def]
            nonlocal reads
            reads += 1
            return read_clock()

        store.read_clock = counted  # type: ignore[method-assign]
        stop = threading.Event()
        runner = threading.Thread(target=feed.run, args=(stop,))
        cpu, wall = time.process_time(), time.monotonic()
        runner.start()
        time.sleep(args.seconds)
        stop.set()
        runner.join()
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        store.dispose()
    print(
        f"feed after its last candle, {wall:.1f} s: {reads / wall:.1f} clock reads/s, "
        f"{cpu / wall:.3f} CPU-s/s"
    )


if __name__ == "__main__":
    main()
