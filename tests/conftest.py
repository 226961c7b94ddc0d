"""Fixtures shared by every test: the price store on SQLite and on the machine's real MariaDB."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from btcmlops.store import PriceStore
from services import mariadb_database


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One suite, two backends: an SQLite file, then a fresh database on the real MariaDB."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('store') / 'prices.db'}"
    else:
        yield from mariadb_database()


@pytest.fixture
def store(store_url: str) -> Iterator[PriceStore]:
    """A migrated price store on each backend."""
    price_store = PriceStore(store_url)
    price_store.migrate()
    yield price_store
    price_store.dispose()
