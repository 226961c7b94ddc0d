"""A price store that refuses or says nothing: 503 naming the store, in the store wait, never a 500.

The registry is the replay's (the champion loads), the store a MySQL address that refuses connections
or a port that accepts and stays silent; nothing is in memory, so every route that needs the store
must answer 503 with why.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from btcmlops.serving import create_app
from btcmlops.settings import Settings, StoreSettings
from btcmlops.store import PriceStore
from services import free_port, silent_server

SettingsCopy = Callable[..., Settings]
STORE_WAIT_S = 0.5
READS = [
    ("GET", "/clock", None),
    ("GET", "/candles", None),
    ("GET", "/predictions", None),
    ("GET", "/decisions", None),
    ("GET", "/model/history", None),
    ("POST", "/predict", {"timestamp": "2021-03-01T00:00:00Z"}),
]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word (a frozen database server)."""
    with silent_server() as port:
        yield port


def _serving_without_store(settings_copy: SettingsCopy, port: int) -> TestClient:
    settings = settings_copy(serve={"store_timeout_s": STORE_WAIT_S, "long_read_timeout_s": STORE_WAIT_S})
    store = PriceStore(
        f"mysql+pymysql://root@127.0.0.1:{port}/prices",
        StoreSettings(connect_timeout_s=1, read_timeout_s=1, write_timeout_s=1, pool_timeout_s=1),
    )
    return TestClient(create_app(settings, store=store))


def _model_loaded(client: TestClient) -> None:
    deadline = time.monotonic() + 30
    while client.get("/model").json()["version"] is None:
        if time.monotonic() > deadline:
            pytest.fail(f"no model: {client.get('/model').text}")
        time.sleep(0.05)


@pytest.mark.parametrize("store", ["refused", "silent"])
def test_every_read_that_needs_the_store_is_a_503_in_the_store_wait(
    settings_copy: SettingsCopy, silent_port: int, store: str
) -> None:
    port = free_port() if store == "refused" else silent_port
    with _serving_without_store(settings_copy, port) as client:
        _model_loaded(client)
        for method, path, body in [*READS, ("GET", "/readyz", None)]:
            started = time.monotonic()
            response = client.request(method, path, json=body)
            seconds = time.monotonic() - started
            assert response.status_code == 503, (path, response.text)
            detail = response.json()["detail"]
            assert "price store" in detail, (path, detail)
            # The big reads wait on the driver's own timeouts (1 s here), the others on the store wait.
            assert seconds < 2.5, (path, seconds)
        model = client.get("/model").json()
    assert model["store_error"] is not None
    assert model["last_swap_error"] is None


def test_a_store_that_cannot_be_migrated_at_start_is_logged_with_why(
    settings_copy: SettingsCopy, caplog: pytest.LogCaptureFixture
) -> None:
    """The service still starts (its watcher keeps reading the store), but never silently."""
    caplog.set_level("WARNING", logger="btcmlops.bootstrap")
    with _serving_without_store(settings_copy, free_port()) as client:
        assert client.get("/healthz").status_code == 200
    [record] = [r for r in caplog.records if r.name == "btcmlops.bootstrap"]
    assert "could not migrate the price store at mysql+pymysql://" in record.getMessage()
    assert "refused" in record.getMessage().lower()
