"""What a client may send as a time, an hour or an integer, and how a refusal says what is wrong."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
)

from btcmlops.features import FEATURE_SETS

EXAMPLE_HOUR = "2024-03-05T14:00:00Z"

FIRST_YEAR, LAST_YEAR = 1970, 2199
"""Years a time sent to the API may carry, as written: far wider than any market data, narrow enough
that every hour, its target hour and pandas' nanosecond timestamps stay in range whatever the offset."""

_YEAR = "(19[7-9][0-9]|2[01][0-9][0-9])"
_DATE = f"{_YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_HOURS = "([01][0-9]|2[0-3])"
TIME_PATTERN = f"^{_DATE}[Tt ]{_HOURS}:[0-5][0-9](:[0-5][0-9](\\.[0-9]+)?)?([Zz]|[+-]{_HOURS}:?[0-5][0-9])$"
"""ISO 8601 date-time text with a UTC offset and a year in [FIRST_YEAR, LAST_YEAR]: the rule itself, as
the service checks it and as the OpenAPI document states it (a generated client sends nothing refused)."""
HOUR_PATTERN = f"^{_DATE}[Tt ]{_HOURS}:00(:00(\\.0+)?)?([Zz]|[+-]{_HOURS}:?00)$"
"""TIME_PATTERN on the hour: minutes and seconds zero, and an offset of whole hours (so that the
instant is on the hour in UTC too)."""

MAX_CANDLES = 4 * max(feature_set.window_hours for feature_set in FEATURE_SETS.values())
"""Most candles one request may send: a small multiple of the longest feature window (only the last
window is used), so validating a request costs little whatever a client sends."""


_NO_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")
_YEAR_FIRST = re.compile(r"^(\d{4})-")


def _text_matching(pattern: str, what: str) -> Callable[[object], object]:
    """A check that lets only text matching ``pattern`` through, saying what is wrong otherwise:
    pydantic alone would read a number as Unix seconds, and take spellings the document does not state.
    """
    compiled = re.compile(pattern)
    any_time = re.compile(TIME_PATTERN)

    def check(value: object) -> object:
        if isinstance(value, datetime):
            return value  # built in Python, not sent
        if isinstance(value, str) and compiled.match(value):
            return value
        year = _YEAR_FIRST.match(value) if isinstance(value, str) else None
        if not isinstance(value, str):
            why = (
                f"expected {what} as text, such as {EXAMPLE_HOUR}, not {type(value).__name__} {_shown(value)}"
            )
        elif any_time.match(value):
            why = f"{_shown(value)} is not on the hour (minutes and seconds zero, an offset of whole hours)"
        elif _NO_OFFSET.match(value):
            why = f"{_shown(value)} has no timezone offset: add Z or an offset such as +02:00"
        elif year is not None and not FIRST_YEAR <= int(year.group(1)) <= LAST_YEAR:
            why = f"{_shown(value)} is out of range: the year must be from {FIRST_YEAR} to {LAST_YEAR}"
        else:
            why = (
                f"expected {what} with a timezone offset and a year from {FIRST_YEAR} to {LAST_YEAR}, "
                f"such as {EXAMPLE_HOUR}, not {_shown(value)}"
            )
        raise ValueError(why)

    return check


def json_integer(value: object) -> object:
    """Refuse what JSON Schema's ``integer`` does not admit but pydantic's lax ``int`` would take: ``true``
    (as 1) and text ("3"); ``3.0`` is an integer to both."""
    if isinstance(value, bool | str):
        raise ValueError(f"expected an integer, not {type(value).__name__} {_shown(value)}")
    return value


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


UtcDatetime = Annotated[
    AwareDatetime,
    BeforeValidator(_text_matching(TIME_PATTERN, "an ISO 8601 date-time")),
    AfterValidator(_as_utc),
    Field(json_schema_extra={"pattern": TIME_PATTERN}),
]
"""A date-time sent by a client: ISO 8601 text with an offset (never a number), in range, as UTC."""
UtcHour = Annotated[
    AwareDatetime,
    BeforeValidator(_text_matching(HOUR_PATTERN, "an ISO 8601 date-time on the hour")),
    AfterValidator(_as_utc),
    Field(json_schema_extra={"pattern": HOUR_PATTERN}),
]
"""An hour sent by a client (a candle's open time, the hour to forecast from): a UtcDatetime on the hour."""


def not_null(value: object, field: str) -> object:
    """Refuse an explicit null for an optional field: left out means the default, null is a mistake."""
    if value is None:
        raise ValueError(f"'{field}' may be left out but not null")
    return value


def without_null(schema: dict[str, Any]) -> None:
    """Show optional fields that refuse an explicit null (``not_null``) without the null branch."""
    for prop in schema.get("properties", {}).values():
        options = prop.get("anyOf")
        if options and {"type": "null"} in options:
            rest = [option for option in options if option != {"type": "null"}]
            del prop["anyOf"]
            if len(rest) == 1:
                prop.update(rest[0])
            else:
                prop["anyOf"] = rest
