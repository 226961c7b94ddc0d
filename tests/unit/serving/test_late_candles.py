"""Late and corrected candles reach the running service: a filled gap is served, a correction is used."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from btcmlops.replay import ReplayResult
from btcmlops.store import PriceStore
from factories import ReplayOf, make_candles
from services import serving_replay

GAP = "2021-03-10 05:00"


@pytest.fixture
def replay(tmp_path: Path, replay_of: ReplayOf) -> ReplayResult:
    return replay_of(tmp_path, "2021-01-01", "2021-03-31 23:00", drop=(GAP,))


@pytest.fixture
def served(replay: ReplayResult) -> Iterator[tuple[TestClient, PriceStore]]:
    store = PriceStore(f"sqlite:///{replay.out_dir / 'prices.db'}")
    with serving_replay(replay) as client:
        yield client, store
    store.dispose()


def _eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"never: {what}")
        time.sleep(0.05)


def test_a_gap_filled_later_is_served_without_a_restart(served: tuple[TestClient, PriceStore]) -> None:
    client, store = served
    assert client.post("/predict", json={"timestamp": "2021-03-10T05:00:00Z"}).status_code == 404
    after_gap = client.post("/predict", json={"timestamp": "2021-03-10T06:00:00Z"})
    assert after_gap.status_code == 422  # its window crosses the gap

    late = make_candles("2021-01-01", "2021-03-31 23:00")
    store.upsert_candles(late.loc[late["open_time"] == pd.Timestamp(GAP, tz="UTC")])

    _eventually(
        lambda: client.post("/predict", json={"timestamp": "2021-03-10T05:00:00Z"}).status_code == 200,
        "the late candle is served",
    )
    assert client.post("/predict", json={"timestamp": "2021-03-10T06:00:00Z"}).status_code == 200
    assert "btcmlops_snapshot_rebuilds_total 1.0" in client.get("/metrics").text


def test_a_corrected_candle_changes_the_forecasts_after_it(served: tuple[TestClient, PriceStore]) -> None:
    client, store = served
    hour = pd.Timestamp("2021-03-20 12:00", tz="UTC")
    before = client.post("/predict", json={"timestamp": hour.isoformat()}).json()
    candles = store.read_candles(start=hour.to_pydatetime(), end=hour.to_pydatetime())
    candles["close"] = candles["close"] * 1.01
    candles["high"] = candles[["high", "close"]].max(axis=1)
    store.upsert_candles(candles)

    def corrected() -> bool:
        return (
            client.post("/predict", json={"timestamp": hour.isoformat()}).json()["last_close"]
            != before["last_close"]
        )

    _eventually(corrected, "the corrected close is used")
    after = client.post("/predict", json={"timestamp": hour.isoformat()}).json()
    assert after["last_close"] == pytest.approx(before["last_close"] * 1.01)
    assert after["predicted_close"] != before["predicted_close"]
