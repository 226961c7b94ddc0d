"""What the service checks of a request before a route sees it.

A query parameter no route takes is refused instead of ignored (422 naming it but not echoing its
value, answered as every invalid input is: ``serving.errors``); an API key with bytes outside ASCII is
compared as bytes, not refused by ``hmac`` with a ``TypeError``.
"""

from __future__ import annotations

import hmac

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError


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
                    "input": None,  # not echoed: a key or token sent in the wrong place stays unsaid
                }
                for name in unknown
            ]
        )


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


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
