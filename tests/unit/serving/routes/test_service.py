"""``/healthz`` and ``/readyz`` on their own: ready only with a model loaded and a store that answers."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from btcmlops.serving.deps import get_service
from btcmlops.serving.errors import add_error_handlers
from btcmlops.serving.routes import service

T = TypeVar("T")


class _Service:
    """The part of ``ServiceState`` ``/readyz`` reads: the model served and the store's ping."""

    def __init__(self, version: int | None, ping: Callable[[], None]) -> None:
        model = None if version is None else SimpleNamespace(info=SimpleNamespace(version=version))
        self.snapshot = SimpleNamespace(model=model)
        self.store = SimpleNamespace(ping=ping)

    async def store_call(self, work: Callable[[], T]) -> T:
        return work()


def _refused() -> None:
    raise OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))


def _client(fake: Any) -> TestClient:
    app = FastAPI()
    app.include_router(service.router)
    add_error_handlers(app)
    app.dependency_overrides[get_service] = lambda: fake
    return TestClient(app)


@pytest.mark.parametrize(
    ("version", "ping", "status", "answer"),
    [
        (3, lambda: None, 200, {"ready": True, "version": 3}),
        (None, lambda: None, 503, {"ready": False, "detail": "no model loaded yet"}),
        (
            3,
            _refused,
            503,
            {"ready": False, "detail": "price store unreachable: ConnectionRefusedError: connection refused"},
        ),
    ],
)
def test_ready_needs_a_model_and_a_store_that_answers(
    version: int | None, ping: Callable[[], None], status: int, answer: dict[str, object]
) -> None:
    with _client(_Service(version, ping)) as client:
        response = client.get("/readyz")
        assert client.get("/healthz").json() == {"status": "ok"}  # alive, ready or not
    assert response.status_code == status
    assert response.json() == answer
