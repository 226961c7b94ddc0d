"""Domain errors as HTTP answers, in one place, and the OpenAPI ``responses`` that document them.

Routes raise what went wrong in the domain's words: ``ApiError`` (a request that cannot be answered,
with its status), a price store or a model registry that cannot be reached (503 with ``Retry-After``),
a champion change refused or already under way (409), an invalid input (422 naming the field). The
handlers here turn each into its answer; ``answer_for`` gives the same status and words to a batch
that lists one error per item instead of failing whole.
"""

from __future__ import annotations

import math
from typing import Any

import requests
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from mlflow.exceptions import MlflowException
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from btcmlops.contest.changes import ChangeRefusedError
from btcmlops.redaction import describe_error
from btcmlops.serving.schemas import ErrorPublic, InvalidInputPublic
from btcmlops.serving.state import STORE_ERRORS, StoreUnavailableError
from btcmlops.store import ChangeInProgressError

Responses = dict[int | str, dict[str, Any]]

RETRY_AFTER = {"Retry-After": "1"}
"""On a 503 that may pass in a moment (a store outage, too many long reads): ask again in a second."""


class RegistryUnavailableError(RuntimeError):
    """The model registry (MLflow) could not be reached (refused, lost or timed out): 503, ask again."""


def registry_unreachable(error: BaseException) -> bool:
    """Whether ``error`` is MLflow failing to reach its server (not MLflow refusing a request)."""
    cause = error.__cause__ or error.__context__
    return isinstance(error, MlflowException) and isinstance(cause, requests.RequestException)


class ApiError(Exception):
    """A request that cannot be answered, with the HTTP status and words that say why."""

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


REFUSED_CHANGES = (ChangeRefusedError, ChangeInProgressError)
"""A champion change refused (already champion, nothing to roll back) or racing another: 409."""

DOMAIN_ERRORS: tuple[type[Exception], ...] = (
    ApiError,
    *REFUSED_CHANGES,
    *STORE_ERRORS,
    RegistryUnavailableError,
)


def answer_for(error: Exception) -> ApiError:
    """The answer to a domain error (one of ``DOMAIN_ERRORS``): status, detail and headers."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, REFUSED_CHANGES):
        return ApiError(409, str(error))
    if isinstance(error, STORE_ERRORS):
        return ApiError(503, store_detail(error), headers=RETRY_AFTER)
    if isinstance(error, RegistryUnavailableError):
        return ApiError(503, f"model registry unreachable: {error}"[:500], headers=RETRY_AFTER)
    raise TypeError(f"not a domain error: {error!r}")


def store_detail(error: BaseException) -> str:
    """Why the store cannot answer, for a 503's detail: the store named, then the cause."""
    cause = str(error) if isinstance(error, StoreUnavailableError) else describe_error(error)
    return f"price store unreachable: {cause}"[:500]


async def _domain_error(request: Request, error: Exception) -> JSONResponse:
    answer = answer_for(error)
    return JSONResponse(status_code=answer.status, content={"detail": answer.detail}, headers=answer.headers)


async def invalid_input(request: Request, error: Exception) -> JSONResponse:
    """422 with pydantic's errors, each input echoed made encodable as JSON: a lone surrogate escaped
    (UTF-8 cannot hold it), ``Infinity`` or ``NaN`` (Python's JSON reader takes them, JSON has no such
    numbers) as text."""
    assert isinstance(error, RequestValidationError)
    return JSONResponse(status_code=422, content={"detail": _encodable(jsonable_encoder(error.errors()))})


def _encodable(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [_encodable(item) for item in value]
    if isinstance(value, dict):
        return {_encodable(key): _encodable(item) for key, item in value.items()}
    return value


async def http_error(request: Request, error: Exception) -> Response:
    """FastAPI's and Starlette's own HTTP errors, with two answers put right.

    - A body that is not JSON text at all (not UTF-8, nested deeper than the parser goes) is a 422
      naming the body, as malformed JSON is; FastAPI answers only a ``JSONDecodeError`` so and the
      rest with a bare 400.
    - A 405 lists in ``Allow`` every method of the path: Starlette's lists only those of the first
      route that matched the path (``OPTIONS /clock`` said ``Allow: GET``; POST /clock exists too).
    """
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 400 and error.__cause__ is not None:
        return JSONResponse(status_code=422, content={"detail": [_unreadable_body(error.__cause__)]})
    if error.status_code == 405:
        return JSONResponse(
            status_code=405,
            content={"detail": f"{request.method} is not allowed on {request.url.path}"},
            headers={"Allow": ", ".join(_allowed_methods(request))},
        )
    return await http_exception_handler(request, error)


def _unreadable_body(cause: BaseException) -> dict[str, Any]:
    if isinstance(cause, UnicodeDecodeError):
        why = f"the body is not UTF-8 text (byte {cause.start}: {cause.reason})"
    elif isinstance(cause, RecursionError):
        why = "the body's JSON is nested deeper than this service reads"
    else:
        why = f"the body could not be read as JSON ({cause.__class__.__name__})"
    return {"type": "json_invalid", "loc": ["body"], "msg": why, "input": None}


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """The methods some route takes on this path: each tried against every route (an included router
    matches in full only where one of its routes takes the method)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]


def add_error_handlers(app: FastAPI) -> None:
    """Answer every domain error as ``answer_for`` says, invalid input as 422 naming the field, and
    FastAPI's own HTTP errors as ``http_error`` puts them right."""
    for domain_error in DOMAIN_ERRORS:
        app.add_exception_handler(domain_error, _domain_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_input)


def documented(*statuses: int, why: dict[int, str] | None = None) -> Responses:
    """The OpenAPI ``responses`` of a route that may answer ``statuses`` besides 422 and 413; ``why``
    words a status for this route where the common words do not fit."""
    words = {**_WHY, **(why or {})}
    return {status: {"model": ErrorPublic, "description": words[status]} for status in statuses}


NO_MODEL_OR_STORE = {
    503: "No model loaded yet, or the price store cannot be reached (refused or no answer in time)"
}
"""A forecast's 503: it needs a champion loaded, and sometimes the store."""
STORE_OR_REGISTRY = {
    503: "The price store or the model registry cannot be reached (refused or no answer in time)"
}
"""A champion change's 503: it is journaled in the store and carried out in the registry."""


_WHY = {
    400: "X-API-Key sent more than once",
    401: "Wrong or missing X-API-Key",
    403: "Changes disabled: no control key is configured",
    404: "No such candle, or no clock",
    409: "Refused: already champion, nothing to roll back, another change in flight, or no clock yet",
    413: "Request body over the limit, or more timestamps than a batch may hold",
    425: "Too early: the hour has not closed in sim time yet, or the clock holds; ask again",
    503: "The price store cannot be reached (refused or no answer in time)",
}

EVERY_ROUTE: Responses = {
    413: {"model": ErrorPublic, "description": _WHY[413]},
    422: {
        "model": InvalidInputPublic,
        "description": "Invalid input (each failed field named by its loc), or an unknown query parameter",
    },
}
"""What any request may get: its body is over the limit, or an input (a query parameter) is invalid."""
