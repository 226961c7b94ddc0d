"""The champion watcher and the store watcher run apart, back off apart, and recover at once.

A fake registry and a fake store that can hang (frozen), fail or answer: no server needed, fast
intervals. The end-to-end figures (real MariaDB behind a proxy, a real mlflow server) are in
``tests/integration/test_outages.py``.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, TypeVar

import pandas as pd
import pytest

from btcmlops.candles import CANDLE_VALUES
from btcmlops.clock import HOUR, SimClock, start_clock
from btcmlops.contest import TrainingWindow
from btcmlops.registry import ModelVersionInfo
from btcmlops.retry import wait_for_answer
from btcmlops.serving.state import ServiceState
from btcmlops.settings import ServeSettings

T = TypeVar("T")
POLL_S = 0.05


class FakeRegistry:
    """The alias, a switch that makes every call fail, and versions that refuse to load."""

    model_name = "fake"
    experiment_id = None

    def __init__(self) -> None:
        self.champion = 1
        self.down = False
        self.broken: set[int] = set()

    def get_by_alias(self, alias: str) -> ModelVersionInfo | None:
        if self.down:
            raise ConnectionError("registry unreachable")
        if alias != "champion":
            return None
        window = TrainingWindow(
            pd.Timestamp("2021-01-01", tz=UTC), pd.Timestamp("2021-02-01", tz=UTC), 10, "h", "2021-01"
        )
        return ModelVersionInfo(self.champion, f"run-{self.champion}", "v1", window, None, ("champion",))

    def load(self, version: int) -> Any:
        if version in self.broken:
            raise RuntimeError(f"version {version} does not load")
        return SimpleNamespace(feature_set="v1", booster=None, interval=object(), interval_level=0.8)


class FakeStore:
    """Answers at once, hangs while frozen, or refuses."""

    def __init__(self) -> None:
        self.thawed = threading.Event()
        self.thawed.set()
        self.refused = False

    def _call(self) -> None:
        self.thawed.wait()
        if self.refused:
            raise ConnectionRefusedError("store refused")

    def ping(self) -> None:
        self._call()

    def write_served_version(self, *args: object, **kwargs: object) -> None:
        self._call()

    def read_clock(self) -> None:
        self._call()

    def read_candles(self, start: object = None, end: object = None) -> pd.DataFrame:
        self._call()
        return pd.DataFrame(columns=["open_time", *CANDLE_VALUES])

    def read_candles_written(self, since: datetime) -> tuple[pd.DataFrame, None]:
        return self.read_candles(), None


def _watching(state: ServiceState, test: Callable[[], Awaitable[None]]) -> None:
    async def run() -> None:
        watcher = asyncio.create_task(state.watch_registry())
        try:
            await test()
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    asyncio.run(run())


async def _within(seconds: float, condition: Callable[[], bool], what: str) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            pytest.fail(f"{what}: not within {seconds} s")
        await asyncio.sleep(0.005)
    return time.monotonic() - started


def _state(registry: FakeRegistry, store: FakeStore, **settings: float) -> ServiceState:
    serve = ServeSettings(poll_interval_s=POLL_S, store_timeout_s=0.2, max_backoff_s=30, **settings)
    return ServiceState(serve, store, registry, "v1")  # type: ignore[arg-type]


def _served(state: ServiceState) -> int | None:
    model = state.snapshot.model
    return None if model is None else model.info.version


def test_a_frozen_store_holds_up_no_swap_and_shows_until_it_answers() -> None:
    registry, store = FakeRegistry(), FakeStore()
    store.thawed.clear()  # frozen from the start
    state = _state(registry, store)

    async def test() -> None:
        await _within(1, lambda: _served(state) == 1, "the first champion")
        await _within(1, lambda: state.store_error is not None, "the store error")
        assert "has not answered" in (state.store_error or "")
        registry.champion = 2
        swap_s = await _within(1, lambda: _served(state) == 2, "the swap with the store frozen")
        assert swap_s < 3 * POLL_S + 0.1
        store.thawed.set()
        await _within(1, lambda: state.store_error is None, "the store error to clear")
        assert state.last_store_answer is not None

    _watching(state, test)


def test_after_a_long_registry_outage_the_next_promotion_is_followed_within_a_poll() -> None:
    registry, store = FakeRegistry(), FakeStore()
    state = _state(registry, store)

    async def test() -> None:
        await _within(1, lambda: _served(state) == 1, "the first champion")
        registry.down = True
        await _within(1, lambda: state.last_swap_error is not None, "the registry error")
        await asyncio.sleep(2.0)  # waits of 0.05, 0.1, ... 0.8 s: the next one is 1.6 s
        registry.down = False
        registry.champion = 2
        promotion_s = await _within(2, lambda: _served(state) == 2, "the promotion after the outage")
        assert promotion_s < 3 * POLL_S + 0.1  # a poll to see it answer, one to load (not 1.6 s)
        assert state.last_swap_error is None

    _watching(state, test)


def test_a_refused_version_keeps_the_old_one_and_the_error_until_the_alias_moves_on() -> None:
    registry, store = FakeRegistry(), FakeStore()
    registry.broken = {2}
    state = _state(registry, store)

    async def test() -> None:
        await _within(1, lambda: _served(state) == 1, "the first champion")
        registry.champion = 2
        await _within(1, lambda: state.last_swap_error is not None, "the refusal")
        await asyncio.sleep(1.0)  # backing off: the version is still broken, the error still shown
        assert _served(state) == 1
        assert "version 2 does not load" in (state.last_swap_error or "")
        registry.champion = 3
        moved_s = await _within(2, lambda: _served(state) == 3, "the next version")
        assert moved_s < 3 * POLL_S + 0.1
        assert state.last_swap_error is None

    _watching(state, test)


def test_a_refused_store_backs_off_and_clears_when_it_answers() -> None:
    registry, store = FakeRegistry(), FakeStore()
    store.refused = True
    state = _state(registry, store)

    async def test() -> None:
        await _within(1, lambda: state.store_error is not None, "the store error")
        assert "ConnectionRefusedError" in (state.store_error or "")
        await asyncio.sleep(1.0)
        store.refused = False
        await _within(3 * POLL_S + 0.2, lambda: state.store_error is None, "the store error to clear")

    _watching(state, test)


def _run(coroutine: Awaitable[T]) -> T:
    async def main() -> T:
        return await coroutine

    return asyncio.run(main())


def test_wait_for_answer_ends_when_a_silent_dependency_answers_again() -> None:
    answers = iter([ConnectionError(), ConnectionError(), None])

    async def probe() -> bool:
        answer = next(answers)
        if answer is not None:
            raise answer
        return False

    started = time.monotonic()
    assert _run(wait_for_answer(probe, 10, 0.02)) is True
    assert time.monotonic() - started < 1


def test_wait_for_answer_waits_it_out_when_the_dependency_answered_all_along() -> None:
    async def probe() -> bool:
        return False

    started = time.monotonic()
    assert _run(wait_for_answer(probe, 0.3, 0.02)) is False
    assert time.monotonic() - started >= 0.29


def test_wait_for_answer_is_bounded_by_its_wait_when_the_probe_hangs() -> None:
    async def probe() -> bool:
        await asyncio.sleep(60)
        return False

    started = time.monotonic()
    assert _run(wait_for_answer(probe, 0.3, 0.05)) is False
    assert time.monotonic() - started < 1


class SlowClockStore(FakeStore):
    """Its clock row read takes until ``answer`` is set, and gives the row as it was when asked."""

    def __init__(self, row: SimClock) -> None:
        super().__init__()
        self.row = row
        self.asked = threading.Event()
        self.answer = threading.Event()

    def read_clock(self) -> SimClock:  # type: ignore[override]
        row = self.row
        self.asked.set()
        self.answer.wait(timeout=10)
        return row


def test_a_clock_read_begun_before_the_services_own_write_of_the_row_does_not_undo_it() -> None:
    due = datetime(2024, 1, 9, 20, tzinfo=UTC)
    before = replace(start_clock(due, 96.0, datetime.now(UTC), paced=True), forecast_due=due)
    store = SlowClockStore(before)
    state = _state(FakeRegistry(), store)
    reader = threading.Thread(target=lambda: asyncio.run(state.refresh_clock()))
    reader.start()
    assert store.asked.wait(timeout=10)  # the read has the row from before the forecast was made
    made = before.with_forecast_made(due, datetime.now(UTC))
    state.clock_written(made)  # the forecast from 20:00 is made: the row moved on, and this copy with it
    store.answer.set()
    reader.join(timeout=10)
    assert state.clock is made  # not put back to 20:00, which the client would ask again, late
    store.row, store.asked = made.with_forecast_made(due + HOUR, datetime.now(UTC)), threading.Event()
    state._clock_read_at = -math.inf  # a later read, with no write meanwhile, is kept
    asyncio.run(state.refresh_clock())
    assert state.clock is store.row
