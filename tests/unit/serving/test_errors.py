"""Every domain error a route raises, answered in one place: its status, its words, Retry-After on 503."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from btcmlops.contest.changes import ChangeRefusedError
from btcmlops.serving.errors import ApiError, add_error_handlers, answer_for
from btcmlops.serving.state import StoreUnavailableError
from btcmlops.store import ChangeInProgressError

CASES: list[tuple[Callable[[], Exception], int, str, dict[str, str]]] = [
    (lambda: ApiError(425, "the hour has not closed yet"), 425, "the hour has not closed yet", {}),
    (lambda: ChangeRefusedError("v2 is already the champion"), 409, "v2 is already the champion", {}),
    (lambda: ChangeInProgressError("a promotion is in flight"), 409, "a promotion is in flight", {}),
    (
        lambda: StoreUnavailableError("no answer within 2 s"),
        503,
        "price store unreachable: no answer within 2 s",
        {"retry-after": "1"},
    ),
    (
        lambda: OperationalError("SELECT 1", {}, ConnectionRefusedError("refused")),
        503,
        "price store unreachable: ConnectionRefusedError: connection refused",
        {"retry-after": "1"},
    ),
    (
        lambda: PoolTimeoutError("QueuePool limit reached"),
        503,
        "price store unreachable: TimeoutError: QueuePool limit reached",
        {"retry-after": "1"},
    ),
]


@pytest.mark.parametrize(("make", "status", "detail", "headers"), CASES)
def test_a_domain_error_raised_by_a_route_is_answered_with_its_status_and_why(
    make: Callable[[], Exception], status: int, detail: str, headers: dict[str, str]
) -> None:
    app = FastAPI()

    @app.get("/fails")
    async def fails() -> None:
        raise make()

    add_error_handlers(app)
    with TestClient(app) as client:
        response = client.get("/fails")
    assert response.status_code == status
    assert response.json() == {"detail": detail}
    assert {name: response.headers[name] for name in headers} == headers
    answer = answer_for(make())  # the same words for a batch item
    assert (answer.status, answer.detail) == (status, detail)


def test_invalid_input_raised_by_a_route_is_a_422_naming_the_field_and_encodable() -> None:
    app = FastAPI()

    @app.get("/fails")
    async def fails() -> None:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("query", "x"), "msg": "bad", "input": "\ud800"}]
        )

    add_error_handlers(app)
    with TestClient(app) as client:
        response = client.get("/fails")
    assert response.status_code == 422
    assert response.json() == {
        "detail": [{"type": "value_error", "loc": ["query", "x"], "msg": "bad", "input": "\\ud800"}]
    }


def test_an_error_of_no_domain_is_not_given_an_answer() -> None:
    with pytest.raises(TypeError):
        answer_for(ValueError("a bug"))
