"""Calendar months in UTC, the contest's unit of time.

A sample belongs to the month of its *target* hour (the hour whose close it forecasts). So a model
"trained through month m" has seen no target after the last hour of m, and "scored on month m + 1"
means scored on forecasts of hours in m + 1, the first of which is made from the last hour of m.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd

from btcmlops.clock import last_closed_hour

_HOUR = timedelta(hours=1)


@dataclass(frozen=True, order=True)
class Month:
    """One calendar month, e.g. ``Month(2024, 2)``; printed as ``2024-02``."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12:
            raise ValueError(f"month must be 1..12, got {self.month}")

    @classmethod
    def parse(cls, text: str) -> Month:
        """Parse ``YYYY-MM``."""
        try:
            year, month = (int(part) for part in text.split("-"))
            return cls(year, month)
        except ValueError:
            raise ValueError(f"not a month (expected YYYY-MM): {text!r}") from None

    @classmethod
    def of(cls, moment: datetime | pd.Timestamp) -> Month:
        """The month ``moment`` falls in (UTC)."""
        moment = pd.Timestamp(moment).tz_convert(UTC) if pd.Timestamp(moment).tzinfo else pd.Timestamp(moment)
        return cls(moment.year, moment.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def start(self) -> pd.Timestamp:
        """The first hour of the month (UTC)."""
        return pd.Timestamp(datetime(self.year, self.month, 1, tzinfo=UTC))

    @property
    def last_hour(self) -> pd.Timestamp:
        """The open time of the month's last hour (UTC)."""
        return self.next().start - _HOUR

    @property
    def hours(self) -> int:
        """How many hours the month has (672 to 744): what a contest on it counts its share against."""
        return int((self.next().start - self.start).total_seconds()) // 3600

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def plus(self, months: int) -> Month:
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)


def months_between(first: Month, last: Month) -> list[Month]:
    """Every month from ``first`` to ``last``, both included."""
    months = [first]
    while months[-1] < last:
        months.append(months[-1].next())
    return months


def last_complete_month(last_hour: datetime | pd.Timestamp) -> Month:
    """The newest month whose last hour is in the data (``last_hour``: the data's last open hour): a
    month cut short is never contested."""
    month = Month.of(last_hour)
    return month if pd.Timestamp(last_hour) >= month.last_hour else month.previous()


def last_complete_month_by(end_at: datetime | pd.Timestamp) -> Month:
    """The newest complete month of data that ends at ``end_at`` (the clock's end: the close of the
    data's last hour, one hour after its open)."""
    return last_complete_month(pd.Timestamp(end_at) - pd.Timedelta(hours=1))


def end_of_data(last_month: Month) -> str:
    """What happens at the end of the data, in the words the replay and the live stack both say.

    The contest of the last complete month is the last one; no challenger is trained after it, since no
    month is left to score it on (the replay and the live trainer both skip that training).
    """
    return (
        f"the data ends after {last_month}: its contest is the last, and no challenger is trained "
        "after it (no month is left to score one on)"
    )


def last_closed_month(sim_now: datetime) -> Month:
    """The newest month whose last hour has closed at ``sim_now``."""
    return last_month_through(last_closed_hour(sim_now))


def last_month_through(hour: datetime) -> Month:
    """The newest month whose last hour is at or before ``hour`` (the open time of a candle)."""
    month = Month.of(hour)
    return month if hour >= month.last_hour.to_pydatetime() else month.previous()
