"""What makes a candle valid, in one place: candle files and the inference API ask the same questions."""

from __future__ import annotations

import math

PRICE_FIELDS = ("open", "high", "low", "close")


def candle_problems(
    open_: float, high: float, low: float, close: float, volume: float
) -> list[tuple[str, str]]:
    """List (field, message) for every rule the candle breaks, most basic first.

    The rules: every value finite, prices positive, volume not negative, ``high`` at least
    ``max(open, close)``, ``low`` at most ``min(open, close)``, and ``high`` not below ``low``. Callers
    that report one problem take the first, so the order goes from "not a value" to "inconsistent".
    A non-finite value is reported alone: NaN compares false with everything, so the other rules would
    say nothing useful about it.
    """
    values = dict(zip((*PRICE_FIELDS, "volume"), (open_, high, low, close, volume), strict=True))
    not_finite = [
        (name, f"{value} is not a finite number")
        for name, value in values.items()
        if not math.isfinite(value)
    ]
    if not_finite:
        return not_finite
    problems: list[tuple[str, str]] = []
    for name in PRICE_FIELDS:
        if values[name] <= 0:
            problems.append((name, f"price {values[name]} is not positive"))
    if volume < 0:
        problems.append(("volume", f"volume {volume} is negative"))
    if high < max(open_, close):
        problems.append(("high", f"{high} is below max(open, close) = {max(open_, close)}"))
    if low > min(open_, close):
        problems.append(("low", f"{low} is above min(open, close) = {min(open_, close)}"))
    if high < low:
        problems.append(("high", f"{high} is below low = {low}"))
    return problems
