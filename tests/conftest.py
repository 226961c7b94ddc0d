"""Fixtures shared by every test: the price store on SQLite and on the machine's real MariaDB."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from btcmlops.store import PriceStore

MYSQL_SERVER_URL = os.environ.get("BTCMLOPS_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")


def mariadb_database() -> Iterator[str]:
    """Create a uniquely named database on the MariaDB server, yield its URL, drop it afterwards.

    An unreachable server fails the run in CI (where it must be there) and skips elsewhere.
    """
    server = create_engine(MYSQL_SERVER_URL, pool_pre_ping=True)
    name = f"btcmlops_test_{uuid.uuid4().hex[:12]}"
    try:
        with server.connect() as connection:
            connection.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    except OperationalError as error:
        server.dispose()
        message = f"MariaDB not reachable at {MYSQL_SERVER_URL}: {error.orig}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        url = make_url(MYSQL_SERVER_URL).set(database=name, query={"charset": "utf8mb4"})
        yield url.render_as_string(hide_password=False)
    finally:
        with server.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        server.dispose()


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
