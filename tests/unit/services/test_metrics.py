"""The feed's and the trainer's Prometheus metrics: the pipeline's state read from the store (the
trainer's lease, the months closed in sim time and not decided), the trainer's own rounds, and the
endpoint that serves them."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from btcmlops.calendar import Month
from btcmlops.clock import start_clock
from btcmlops.services.metrics import (
    LEASE_NAME,
    PipelineCollector,
    TrainerMetrics,
    metrics_endpoint,
    pipeline_registry,
)
from btcmlops.services.trainer import TrainerService
from btcmlops.settings import TrainerSettings
from btcmlops.store import PriceStore
from factories import make_candles
from services import free_port, wait_until

MODEL = "btc-next-hour-close"
CANDLES = make_candles("2021-01-01", "2021-04-30 23:00")


def _samples(registry: CollectorRegistry) -> dict[str, float]:
    return {sample.name: sample.value for family in registry.collect() for sample in family.samples}


def _close(store: PriceStore, month: str) -> None:
    """Record ``month`` as closed, as the contest does: a month_close journal row, finished."""
    entry = store.journal.begin(
        MODEL, "month_close", {}, actor="trainer", reason="test", now=datetime.now(UTC), month=month
    )
    store.journal.finish(entry.id, [], now=datetime.now(UTC))


def _at(store: PriceStore, sim_now: datetime) -> None:
    store.write_clock(start_clock(sim_now, 1.0, datetime.now(UTC), paused=True))


def test_the_months_closed_in_sim_time_and_not_decided_are_counted_from_the_journal(
    store: PriceStore,
) -> None:
    store.upsert_candles(CANDLES)
    collector = PipelineCollector(store, MODEL)
    assert collector.undecided_months() is None  # no clock: nothing is due
    _at(store, datetime(2021, 3, 15, tzinfo=UTC))
    assert collector.undecided_months() == [Month(2021, 1), Month(2021, 2)]
    _close(store, "2021-01")
    _close(store, "2021-02")
    assert collector.undecided_months() == []
    _at(store, datetime(2021, 4, 1, tzinfo=UTC))  # held at March's end: its last hour has closed
    assert collector.undecided_months() == [Month(2021, 3)]
    registry = CollectorRegistry()
    registry.register(collector)
    samples = _samples(registry)
    assert samples["btcmlops_pipeline_undecided_months"] == 1
    assert samples["btcmlops_pipeline_oldest_undecided_month_end_timestamp_seconds"] == (
        datetime(2021, 4, 1, tzinfo=UTC).timestamp()
    )
    _close(store, "2021-03")
    samples = _samples(registry)
    assert samples["btcmlops_pipeline_undecided_months"] == 0
    assert samples["btcmlops_pipeline_oldest_undecided_month_end_timestamp_seconds"] == 0


def test_a_month_close_in_flight_is_not_decided_yet(store: PriceStore) -> None:
    store.upsert_candles(CANDLES)
    _at(store, datetime(2021, 2, 1, 0, 30, tzinfo=UTC))
    store.journal.begin(
        MODEL, "month_close", {}, actor="trainer", reason="test", now=datetime.now(UTC), month="2021-01"
    )
    assert PipelineCollector(store, MODEL).undecided_months() == [Month(2021, 1)]


def test_the_lease_expiry_is_exported_and_zero_without_a_holder(store: PriceStore) -> None:
    registry = pipeline_registry(store, MODEL)
    assert _samples(registry)["btcmlops_trainer_lease_expiry_timestamp_seconds"] == 0
    now = datetime(2030, 1, 1, 12, tzinfo=UTC)
    store.journal.acquire_lease(LEASE_NAME, "host:1", now=now, ttl_s=30)
    expiry = _samples(registry)["btcmlops_trainer_lease_expiry_timestamp_seconds"]
    assert expiry == (now + timedelta(seconds=30)).timestamp()
    store.journal.release_lease(LEASE_NAME, "host:1")
    assert _samples(registry)["btcmlops_trainer_lease_expiry_timestamp_seconds"] == 0


def test_a_store_it_cannot_read_exports_nothing_rather_than_a_wrong_figure(
    store: PriceStore, caplog: pytest.LogCaptureFixture
) -> None:
    class Unreachable(PriceStore):
        def read_clock(self) -> None:
            raise OSError("the store is down")

    broken = Unreachable(store.url)
    try:
        assert list(PipelineCollector(broken, MODEL).collect()) == []
    finally:
        broken.dispose()
    assert "could not read the pipeline's state" in caplog.text


def test_the_endpoint_serves_the_registry_and_no_port_serves_nothing(store: PriceStore) -> None:
    port = free_port()
    with metrics_endpoint(pipeline_registry(store, MODEL), "127.0.0.1", port):
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    names = {family.name for family in text_string_to_metric_families(text)}
    assert "btcmlops_trainer_lease_expiry_timestamp_seconds" in names
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1)  # shut down with the block
    with (
        metrics_endpoint(pipeline_registry(store, MODEL), "127.0.0.1", None),
        pytest.raises(httpx.ConnectError),
    ):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1)


class _IdleContest:
    """A contest with nothing due: the trainer's rounds read the clock and the store, nothing more."""

    class changes:  # noqa: N801 - mimics the attribute of ``Contest``
        @staticmethod
        def sync_with_registry() -> None:
            return None

    def reconcile(self) -> list[object]:
        return []

    def first_open_month(self, first: object) -> Month:
        return Month(2099, 1)


def test_the_trainer_counts_its_rounds_and_whether_it_holds_the_lease(store: PriceStore) -> None:
    store.upsert_candles(CANDLES.iloc[:48])
    _at(store, datetime(2021, 1, 2, tzinfo=UTC))
    registry = CollectorRegistry()
    metrics = TrainerMetrics(registry)
    settings = TrainerSettings(interval_s=0.01, lease_ttl_s=30)
    trainer = TrainerService(_IdleContest(), store, settings, holder="host:1", metrics=metrics)  # type: ignore[arg-type]
    assert _samples(registry)["btcmlops_trainer_lease_held"] == 0
    stop = threading.Event()
    thread = threading.Thread(target=trainer.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(
            lambda: _samples(registry)["btcmlops_trainer_rounds_total"] >= 3,
            timeout_s=20,
            what="three trainer rounds",
            on_timeout=lambda: str(_samples(registry)),
        )
        samples = _samples(registry)
        assert samples["btcmlops_trainer_lease_held"] == 1
        assert samples["btcmlops_trainer_last_round_timestamp_seconds"] > 0
        assert samples["btcmlops_trainer_months_closed_total"] == 0  # nothing was due
        assert samples["btcmlops_trainer_round_failures_total"] == 0
    finally:
        stop.set()
        thread.join(timeout=10)
    assert store.journal.lease(LEASE_NAME) is None
