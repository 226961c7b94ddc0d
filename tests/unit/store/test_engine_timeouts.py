"""Every wait on the price store is bounded by its settings: connect, read, write, a free connection."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from btcmlops.settings import StoreSettings
from btcmlops.store import PriceStore
from btcmlops.store.price_store import engine_options
from services import silent_server as silent_tcp_server


def test_mysql_gets_socket_timeouts_and_a_pool_timeout_from_the_settings() -> None:
    settings = StoreSettings(connect_timeout_s=1.5, read_timeout_s=3, write_timeout_s=4, pool_timeout_s=2)
    options = engine_options("mysql+pymysql://user@db/prices", settings)
    assert options["connect_args"] == {"connect_timeout": 1.5, "read_timeout": 3, "write_timeout": 4}
    assert options["pool_timeout"] == 2
    assert options["pool_pre_ping"] is True


def test_sqlite_gets_its_busy_timeout() -> None:
    options = engine_options("sqlite:///prices.db", StoreSettings(busy_timeout_s=0.5))
    assert options["connect_args"] == {"timeout": 0.5}
    assert "pool_timeout" not in options
    assert "pool_pre_ping" not in options  # a file does not drop connections: no ping per checkout


def test_existing_callers_get_the_default_timeouts(tmp_path: Path) -> None:
    store = PriceStore(f"sqlite:///{tmp_path / 'prices.db'}")
    store.migrate()
    store.ping()
    store.dispose()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word (a frozen database server)."""
    with silent_tcp_server() as port:
        yield port


def test_a_silent_mysql_server_fails_the_call_after_the_timeout(silent_server: int) -> None:
    """No greeting from the server (read with the read timeout): the call fails instead of hanging."""
    store = PriceStore(
        f"mysql+pymysql://root@127.0.0.1:{silent_server}/prices",
        StoreSettings(connect_timeout_s=0.5, read_timeout_s=1),
    )
    started = time.monotonic()
    with pytest.raises(OperationalError):
        store.ping()
    assert time.monotonic() - started < 3
    store.dispose()
