"""Live drift in ``GET /drift`` and ``/metrics``: the last 7 sim days against the champion's training window.

The expected PSI is worked out here from the store's candles: the features built over them, the
reference and current hours picked by their times, deciles by numpy and bins by ``np.digitize``, not
by the service's own drift code.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from btcmlops.clock import SimClock
from btcmlops.features import build_features, get_feature_set
from btcmlops.serving.drift import LiveDrift
from btcmlops.serving.state import ServiceState
from btcmlops.settings import Settings
from btcmlops.store import PriceStore
from drift_by_hand import psi_by_hand
from services import wait_until

HOUR = timedelta(hours=1)
SIM_NOW = datetime(2021, 4, 20, 12, 30, tzinfo=UTC)

Serve = Callable[..., AbstractContextManager[TestClient]]
SettingsCopy = Callable[..., Settings]


@pytest.fixture
def settings(settings_copy: SettingsCopy) -> Settings:
    """The test's store, its sim clock paused at ``SIM_NOW``."""
    settings = settings_copy()
    store = PriceStore(settings.store.url or "")
    store.write_clock(SimClock(SIM_NOW, datetime.now(UTC), 1.0, paused=True))
    store.dispose()
    return settings


def _drift_when_read(client: TestClient) -> dict[str, object]:
    found: dict[str, dict[str, object]] = {}

    def read() -> bool:
        found["drift"] = client.get("/drift").json()
        return bool(found["drift"]["features"])

    wait_until(read, timeout_s=30, what="a drift reading", on_timeout=lambda: client.get("/drift").text)
    return found["drift"]


def test_drift_is_the_hand_computed_psi_in_the_api_and_the_metrics(settings: Settings, serve: Serve) -> None:
    store = PriceStore(settings.store.url or "")
    candles = store.read_candles()
    store.dispose()
    columns = list(get_feature_set(settings.model.feature_set).columns)
    features = build_features(candles, settings.model.feature_set)
    hours = pd.DatetimeIndex(features.index)
    with serve() as client:
        window = client.get("/model").json()["training_window"]
        version = client.get("/model").json()["version"]
        drift = _drift_when_read(client)
        metrics = client.get("/metrics").text

    train_start, train_end = pd.Timestamp(window["train_start"]), pd.Timestamp(window["train_end"])
    has_target = (hours + HOUR).isin(pd.DatetimeIndex(candles["open_time"]))
    reference = features.loc[(hours + HOUR >= train_start) & (hours + HOUR <= train_end) & has_target]
    last = pd.Timestamp(SIM_NOW).floor("h") - HOUR  # the newest candle closed by the sim clock's now
    current = features.loc[(hours > last - 7 * 24 * HOUR) & (hours <= last)]
    assert len(current) == 168
    expected = {c: psi_by_hand(reference[c].to_numpy(), current[c].to_numpy()) for c in columns}

    assert drift["model_version"] == version
    assert drift["window"] == "7d"
    assert drift["threshold"] == 0.25
    assert drift["moderate_threshold"] == 0.1
    assert drift["reference"] == {
        "start": reference.index[0].isoformat().replace("+00:00", "Z"),
        "end": reference.index[-1].isoformat().replace("+00:00", "Z"),
        "hours": len(reference),
    }
    assert drift["current"] == {
        "start": current.index[0].isoformat().replace("+00:00", "Z"),
        "end": current.index[-1].isoformat().replace("+00:00", "Z"),
        "hours": 168,
    }
    got = {row["feature"]: row["psi"] for row in drift["features"]}
    assert list(got) == columns
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)
    for row in drift["features"]:
        psi = row["psi"]
        assert row["status"] == ("drifted" if psi > 0.25 else "moderate" if psi >= 0.1 else "stable")
    order = ["stable", "moderate", "drifted"]
    assert drift["status"] == max((row["status"] for row in drift["features"]), key=order.index)
    assert max(expected.values()) > 0  # a real month against its training window is not identical

    (family,) = [f for f in text_string_to_metric_families(metrics) if f.name == "btcmlops_feature_drift_psi"]
    assert family.type == "gauge"
    exported = {sample.labels["feature"]: sample.value for sample in family.samples}
    assert exported == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert {frozenset(s.labels.items()) - {("feature", s.labels["feature"])} for s in family.samples} == {
        frozenset({("model_version", str(version)), ("window", "7d")})
    }


def test_the_threshold_setting_decides_the_status(settings_copy: SettingsCopy, serve: Serve) -> None:
    store = PriceStore(settings_copy().store.url or "")
    store.write_clock(SimClock(SIM_NOW, datetime.now(UTC), 1.0, paused=True))
    store.dispose()
    with serve(serve={"drift_psi_threshold": 0.100001}) as client:
        drift = _drift_when_read(client)
    assert drift["threshold"] == 0.100001
    for row in drift["features"]:
        assert row["status"] == (
            "drifted" if row["psi"] > 0.100001 else "moderate" if row["psi"] >= 0.1 else "stable"
        )


def test_a_reading_needs_a_day_of_hours_and_is_made_only_when_something_moved(
    settings: Settings, serve: Serve
) -> None:
    with serve() as client:
        service: ServiceState = client.app.state.service  # type: ignore[attr-defined]
        # Ready means a champion loaded; the store watcher's first read of the candles may come after.
        wait_until(
            lambda: service.snapshot.latest_hour is not None,
            timeout_s=30,
            what="the candles in memory",
            on_timeout=lambda: client.get("/model").text,
        )
        snapshot = service.snapshot
    drift = LiveDrift()
    assert not drift.update(snapshot, None)  # no clock and no candle: nothing to compare
    assert drift.reading is None
    assert drift.update(snapshot, SIM_NOW)
    assert drift.reading is not None
    assert len(drift.reading.psi) == len(get_feature_set(snapshot.feature_set).columns)
    first = drift.reading
    assert not drift.update(snapshot, SIM_NOW + timedelta(minutes=20))  # the same hours: no new reading
    assert drift.reading is first
    assert drift.update(snapshot, SIM_NOW + HOUR)  # the window moved an hour
    assert drift.reading.current_end == first.current_end + HOUR
    early = datetime.fromtimestamp(int(snapshot.hours[0]) * 3600, UTC) + 40 * HOUR
    assert drift.update(snapshot, early)  # 40 candles, 16 with a full window of features: too few
    assert drift.reading is not None
    assert drift.reading.current_hours == 40 - 24 - 1 + 1
    assert drift.reading.psi == {}
