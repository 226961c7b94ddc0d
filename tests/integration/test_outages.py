"""The inference service (its own process) through a frozen store, a refused store and an MLflow outage.

The store is MariaDB behind a TCP proxy (``tests/tcp_proxy.py``) that can freeze (accept, then say
nothing) or refuse; MLflow is a real ``mlflow server`` that is stopped and started again. The service
runs at the default poll interval, backoff and store timeout. Every answer must be 200 or 503 (never a
500, never a hang); forecasts of hours in memory keep answering; the champion watcher keeps swapping.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from btcmlops.registry import CHAMPION, ModelRegistry
from btcmlops.settings import ServeSettings
from btcmlops.store import PriceStore
from factories import make_candles
from forecast_load import NonStopClient, register_two_versions, serve_process
from services import wait_until
from tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

POLL_S = ServeSettings().poll_interval_s
STORE_WAIT_S = ServeSettings().store_timeout_s
ANSWER_BOUND_S = STORE_WAIT_S + 1.0
"""A request that needs a silent store answers 503 within the store wait, with a second of room."""
CONTROL_KEY = "outages-control-key"
OUTAGE_ENV = {
    "BTCMLOPS_STORE__CONNECT_TIMEOUT_S": "2",
    "BTCMLOPS_STORE__READ_TIMEOUT_S": "3",
    "BTCMLOPS_STORE__WRITE_TIMEOUT_S": "3",
    "BTCMLOPS_SERVE__REGISTRY_TIMEOUT_S": "3",
    "BTCMLOPS_SERVE__LONG_READ_TIMEOUT_S": str(STORE_WAIT_S),
}
"""Driver and registry timeouts short enough that a thread left waiting on a silent store ends soon; the
long reads' own bound (10 s by default: a large page may take seconds) set to the store wait, so the test
holds them to it."""
LOAD_ALLOWANCE_S = 4.0
"""One model load through a running MLflow server on a busy two-core machine, with room."""
FROZEN_POLL_S = 0.5
"""The frozen-store test's poll interval."""
FROZEN_DRIVER_TIMEOUT_S = 12
"""The driver's connect, read and write timeouts in the frozen-store test: a swap or a forecast that
waited on the frozen store would wait this long, three times the swap bound, so the two cannot be
mistaken for each other on a loaded machine (at 2 s and 3 s, a swap that waited on nothing took 3.21 s
twice beside the suite: a poll, the version's files through the mlflow server, the load and a forecast
on two cores shared with a dozen processes)."""
FROZEN_SWAP_BOUND_S = FROZEN_POLL_S + LOAD_ALLOWANCE_S
"""Alias change to the new version's first answer while the store is frozen: a poll and a load. The 3 s of
issue 11, at the default poll, is `bench/serve.py`'s to measure, on a quiet machine."""
AFTER_OUTAGE_BOUND_S = POLL_S + 2 * LOAD_ALLOWANCE_S
"""Alias change to the new version's first answer, just after MLflow is back: a probe's poll and a load
through a server process that has only just started (its first requests still open its store). Twice
the allowance: 6.78 s in a CI run beside the suite, over the 6 s of one. Still a third of the 30 s
backoff, which is the wait this bound tells apart: without the probe the next try comes up to 30 s
later."""
HOURS = [f"2021-02-{day:02d}T{hour:02d}:00:00Z" for day in range(2, 28) for hour in range(0, 24, 5)]
NEWEST = "2021-03-01T00:00:00Z"
"""One hour after the last stored candle: not in memory, so asking for it needs the store."""


def _register_two_versions(tracking_uri: str) -> ModelRegistry:
    registry = register_two_versions(
        tracking_uri, f"outages-{uuid.uuid4().hex[:6]}", f"outages-{uuid.uuid4().hex[:6]}"
    )
    registry.set_alias(CHAMPION, 1)
    return registry


@pytest.fixture
def store_behind_proxy(mariadb_url_factory: Callable[[], str]) -> Iterator[tuple[str, TcpProxy]]:
    """A MariaDB database with two months of candles, and its URL through a proxy that can fail."""
    direct = mariadb_url_factory()
    store = PriceStore(direct)
    store.migrate()
    store.upsert_candles(make_candles("2021-01-01", "2021-02-28 23:00"))
    store.dispose()
    url = make_url(direct)
    with TcpProxy((url.host or "127.0.0.1", url.port or 3306)) as proxy:
        yield url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False), proxy


def _timed(client: httpx.Client, method: str, path: str, **kwargs: object) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
    return response, time.monotonic() - started


def _follow(forecasts: NonStopClient, registry: ModelRegistry, version: int, bound_s: float) -> float:
    """Move the alias to ``version``; seconds until the service answers with it."""
    moved = time.monotonic()
    registry.set_alias(CHAMPION, version)
    wait_until(
        lambda: forecasts.first_with(version, moved) is not None,
        timeout_s=bound_s + 15,
        what=f"a forecast from version {version}",
        on_timeout=lambda: str(forecasts.answers[-3:]),
    )
    seen = forecasts.first_with(version, moved)
    assert seen is not None
    return seen - moved


def test_a_frozen_store_gets_503s_in_seconds_while_forecasts_and_swaps_go_on(
    store_behind_proxy: tuple[str, TcpProxy], mlflow_server: str, tmp_path: Path
) -> None:
    store_url, proxy = store_behind_proxy
    registry = _register_two_versions(mlflow_server)
    with (
        serve_process(
            store_url,
            registry,
            tmp_path / "home",
            {
                **OUTAGE_ENV,
                "BTCMLOPS_SERVE__POLL_INTERVAL_S": str(FROZEN_POLL_S),
                **{
                    f"BTCMLOPS_STORE__{kind}_TIMEOUT_S": str(FROZEN_DRIVER_TIMEOUT_S)
                    for kind in ("CONNECT", "READ", "WRITE")
                },
            },
        ) as url,
        httpx.Client(base_url=url, timeout=30) as client,
        NonStopClient(url, HOURS, timeout_s=30) as forecasts,
    ):
        forecasts.wait_for_answers()
        proxy.freeze()
        frozen_at = time.monotonic()
        wait_until(
            lambda: client.get("/model").json()["store_error"] is not None,
            timeout_s=15,
            what="the store error in /model",
            on_timeout=lambda: client.get("/model").text,
        )
        error_shown_s = time.monotonic() - frozen_at
        clock, clock_s = _timed(client, "GET", "/clock")
        ready, ready_s = _timed(client, "GET", "/readyz")
        reads = {path: _timed(client, "GET", path) for path in ("/candles", "/predictions")}
        newest, newest_s = _timed(client, "POST", "/predict", json={"timestamp": NEWEST})
        in_memory, in_memory_s = _timed(client, "POST", "/predict", json={"timestamp": HOURS[3]})
        swap_s = _follow(forecasts, registry, 2, FROZEN_SWAP_BOUND_S)
        frozen_model = client.get("/model").json()
        frozen_for_s = time.monotonic() - frozen_at

        proxy.heal()
        healed_at = time.monotonic()
        wait_until(
            lambda: client.get("/model").json()["store_error"] is None,
            timeout_s=30,
            what="the store error to clear",
            on_timeout=lambda: client.get("/model").text,
        )
        cleared_s = time.monotonic() - healed_at
        wait_until(
            lambda: client.get("/readyz").status_code == 200,
            timeout_s=15,
            what="ready again",
            on_timeout=lambda: client.get("/readyz").text,
        )
        back_swap_s = _follow(forecasts, registry, 1, FROZEN_SWAP_BOUND_S)

    failed = [a for a in forecasts.answers if a.status != 200]
    during = [a for a in forecasts.answers if frozen_at <= a.at <= frozen_at + frozen_for_s]
    print(
        f"\nfrozen store: GET /clock {clock.status_code} in {clock_s:.2f} s, /readyz {ready.status_code} in "
        f"{ready_s:.2f} s, newest hour {newest.status_code} in {newest_s:.2f} s, hour in memory "
        f"{in_memory.status_code} in {in_memory_s:.3f} s; alias v1->v2 served after {swap_s:.2f} s; store "
        f"error shown after {error_shown_s:.1f} s, cleared {cleared_s:.1f} s after the thaw; v2->v1 after "
        f"{back_swap_s:.2f} s; "
        + ", ".join(f"{path} {r.status_code} in {s:.2f} s" for path, (r, s) in reads.items())
        + f"; {len(forecasts.answers)} forecasts ({len(during)} while frozen, slowest "
        f"{max(a.seconds for a in during):.3f} s), {len(failed)} failed"
    )
    assert clock.status_code == 503
    assert "price store unreachable" in clock.json()["detail"]
    assert clock_s < ANSWER_BOUND_S
    assert ready.status_code == 503
    assert "price store" in ready.json()["detail"]
    assert ready_s < ANSWER_BOUND_S
    for path, (response, seconds) in reads.items():  # the long reads too, not after the driver's timeouts
        assert response.status_code == 503, (path, response.text)
        assert "price store unreachable" in response.json()["detail"], path
        assert seconds < ANSWER_BOUND_S, path
    assert newest.status_code == 503
    assert "price store unreachable" in newest.json()["detail"]
    assert newest_s < ANSWER_BOUND_S
    assert in_memory.status_code == 200
    assert swap_s < FROZEN_SWAP_BOUND_S
    assert back_swap_s < FROZEN_SWAP_BOUND_S
    assert frozen_model["version"] == 2
    assert frozen_model["last_swap_error"] is None
    assert error_shown_s < FROZEN_POLL_S + STORE_WAIT_S + 1
    assert frozen_model["store_error"] is not None
    assert failed == []
    assert len(during) > 10


def test_a_refused_store_gets_503_never_500(
    store_behind_proxy: tuple[str, TcpProxy], mlflow_server: str, tmp_path: Path
) -> None:
    store_url, proxy = store_behind_proxy
    registry = _register_two_versions(mlflow_server)
    with (
        serve_process(store_url, registry, tmp_path / "home", OUTAGE_ENV) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        proxy.refuse()
        answers = {
            path: _timed(client, method, path, **kwargs)
            for method, path, kwargs in (
                ("GET", "/clock", {}),
                ("GET", "/readyz", {}),
                ("GET", "/candles", {}),
                ("GET", "/predictions", {}),
                ("GET", "/decisions", {}),
                ("GET", "/model/history", {}),
                ("POST", "/predict", {"json": {"timestamp": NEWEST}}),
            )
        }
        in_memory = client.post("/predict", json={"timestamp": HOURS[0]})
        wait_until(
            lambda: client.get("/model").json()["store_error"] is not None,
            timeout_s=15,
            what="the store error in /model",
            on_timeout=lambda: client.get("/model").text,
        )
        shown = client.get("/model").json()["store_error"]
        proxy.heal()
        wait_until(
            lambda: client.get("/readyz").status_code == 200,
            timeout_s=15,
            what="ready again",
            on_timeout=lambda: client.get("/readyz").text,
        )
        wait_until(
            lambda: client.get("/model").json()["store_error"] is None,
            timeout_s=15,
            what="the store error to clear",
            on_timeout=lambda: client.get("/model").text,
        )
        clock_after = client.get("/clock")
    print(
        "\nrefused store: "
        + ", ".join(f"{path} {r.status_code} in {s:.2f} s" for path, (r, s) in answers.items())
        + f"; /model store_error: {shown}"
    )
    for path, (response, seconds) in answers.items():
        assert response.status_code == 503, (path, response.text)
        assert "price store" in response.json()["detail"], path
        assert seconds < ANSWER_BOUND_S, path
    assert in_memory.status_code == 200
    assert clock_after.status_code == 404  # no clock in this store: the store answers again


def test_after_an_mlflow_outage_the_next_promotion_is_served_within_a_poll_and_a_load(
    store_behind_proxy: tuple[str, TcpProxy], own_mlflow_server, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """At the default 30 s backoff: an outage long enough to reach long waits, then a promotion."""
    store_url, _ = store_behind_proxy
    registry = _register_two_versions(own_mlflow_server.url)
    env = {**OUTAGE_ENV, "BTCMLOPS_SERVE__CONTROL_KEY": CONTROL_KEY}
    with (
        serve_process(store_url, registry, tmp_path / "home", env) as url,
        httpx.Client(base_url=url, timeout=30) as client,
        NonStopClient(url, HOURS, timeout_s=30) as forecasts,
    ):
        forecasts.wait_for_answers()
        own_mlflow_server.stop()
        wait_until(
            lambda: client.get("/model").json()["last_swap_error"] is not None,
            timeout_s=15,
            what="the registry error in /model",
            on_timeout=lambda: client.get("/model").text,
        )
        by_hand, by_hand_s = _timed(
            client,
            "POST",
            "/model/promote",
            json={"version": 2, "reason": "during the outage"},
            headers={"X-API-Key": CONTROL_KEY},
        )
        time.sleep(4 * POLL_S + 8)  # failures 1..4: the backoff's next wait is 16 s, then 30 s
        own_mlflow_server.start()
        restarted_at = time.monotonic()
        promotion_s = _follow(forecasts, registry, 2, AFTER_OUTAGE_BOUND_S)
        wait_until(
            lambda: client.get("/model").json()["last_swap_error"] is None,
            timeout_s=5,
            what="the registry error to clear",
            on_timeout=lambda: client.get("/model").text,
        )
        cleared_s = time.monotonic() - restarted_at
    failed = [a for a in forecasts.answers if a.status != 200]
    print(
        f"\nMLflow outage: promotion after the restart served in {promotion_s:.2f} s "
        f"(poll {POLL_S:g} s); registry error cleared {cleared_s:.2f} s after the restart; "
        f"{len(forecasts.answers)} forecasts, {len(failed)} failed; a promotion by hand during the outage: "
        f"{by_hand.status_code} in {by_hand_s:.2f} s"
    )
    assert by_hand.status_code == 503, by_hand.text  # not a 500: ask again once MLflow is back
    assert "model registry unreachable" in by_hand.json()["detail"]
    assert promotion_s < AFTER_OUTAGE_BOUND_S
    assert failed == []
