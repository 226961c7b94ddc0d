"""What the service checks of a request before a route sees it, and the 4xx answers it documents.

Every malformed input is a 4xx that names the field: pydantic's errors keep their ``loc``; a query
parameter no route takes is refused instead of ignored; a lone surrogate echoed in an error answer is
escaped (it cannot be encoded as UTF-8, and the answer would have been a 500); an API key with bytes
outside ASCII is compared as bytes, not refused by ``hmac`` with a ``TypeError``.
"""

from __future__ import annotations

import hmac
import math
from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from btcmlops.serving.schemas import ErrorPublic, InvalidInputPublic

Responses = dict[int | str, dict[str, Any]]


def documented(*statuses: int) -> Responses:
    """The OpenAPI ``responses`` of a route that may answer ``statuses`` besides 422 and 413."""
    return {status: {"model": ErrorPublic, "description": _WHY[status]} for status in statuses}


_WHY = {
    400: "The body could not be read as JSON text (not UTF-8, nested too deep)",
    401: "Wrong or missing X-API-Key",
    403: "Changes disabled: no control key is configured",
    404: "No such candle, or no clock",
    409: "Refused: already champion, nothing to roll back, another change in flight, or no clock yet",
    413: "Request body over the limit, or more timestamps than a batch may hold",
    425: "Too early: the hour has not closed in sim time yet, or the clock holds; ask again",
    503: "No model loaded yet, or the price store cannot be reached (refused or no answer in time)",
}

EVERY_ROUTE: Responses = {
    413: {"model": ErrorPublic, "description": _WHY[413]},
    422: {
        "model": InvalidInputPublic,
        "description": "Invalid input (each failed field named by its loc), or an unknown query parameter",
    },
}
"""What any request may get: its body is over the limit, or an input (a query parameter) is invalid."""


async def known_query_only(request: Request) -> None:
    """Refuse query parameters the route does not take (``offset`` would be silently ignored).

    ``async``: FastAPI runs a plain ``def`` dependency in its thread pool, a hop on every request.
    """
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None or not getattr(route, "include_in_schema", False) or not request.query_params:
        return
    known = _query_names(dependant)
    unknown = [name for name in dict.fromkeys(request.query_params) if name not in known]
    if unknown:
        takes = ", ".join(sorted(known)) or "none"
        raise RequestValidationError(
            [
                {
                    "type": "extra_forbidden",
                    "loc": ("query", name),
                    "msg": f"unknown query parameter '{name}' (this endpoint takes: {takes})",
                    "input": request.query_params[name],
                }
                for name in unknown
            ]
        )


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


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


def key_matches(sent: str | None, expected: str) -> bool:
    """Whether the X-API-Key sent is ``expected`` (as UTF-8), in constant time, whatever bytes it holds.

    Headers arrive decoded as Latin-1, so a non-ASCII key is a ``str`` that ``hmac.compare_digest``
    refuses with a ``TypeError``; compared as the bytes that were sent it is simply right or wrong.
    """
    if sent is None:
        return False
    try:
        raw = sent.encode("latin-1")  # the bytes on the wire
    except UnicodeEncodeError:
        raw = sent.encode("utf-8", "surrogateescape")
    return hmac.compare_digest(raw, expected.encode("utf-8", "surrogateescape"))
