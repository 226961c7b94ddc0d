"""Times at the database's edge: tz-aware UTC in the code, naive UTC in the columns (MySQL's DATETIME
has no zone). One pair of converters for every table of the store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload

import pandas as pd


def naive_utc(moment: datetime | pd.Timestamp) -> datetime:
    """Convert to the database's naive UTC; refuse a naive input rather than guess its zone."""
    if type(moment) is datetime and moment.tzinfo is not None:  # the common case, without pandas
        return moment.astimezone(UTC).replace(tzinfo=None)
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is None:
        raise ValueError(f"timestamp {moment!r} has no time zone; pass UTC-aware times")
    converted: datetime = stamp.tz_convert(UTC).tz_localize(None).to_pydatetime()
    return converted


@overload
def aware(moment: datetime) -> datetime: ...
@overload
def aware(moment: None) -> None: ...
def aware(moment: datetime | None) -> datetime | None:
    """A naive UTC time read from a column, made tz-aware (None stays None: a nullable column)."""
    return None if moment is None else moment.replace(tzinfo=UTC)
