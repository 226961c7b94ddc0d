"""What makes a candle valid, in one place: files and the API both ask these questions."""

from __future__ import annotations

PRICE_FIELDS = ("open", "high", "low", "close")


def candle_problems(
    open_: float, high: float, low: float, close: float, volume: float
) -> list[tuple[str, str]]:
    """(field, message) for every rule the candle breaks: positive prices, OHLC bounds, volume >= 0."""
    problems: list[tuple[str, str]] = []
    for name, value in zip(PRICE_FIELDS, (open_, high, low, close), strict=True):
        if value <= 0:
            problems.append((name, f"price {value} is not positive"))
    if volume < 0:
        problems.append(("volume", f"volume {volume} is negative"))
    if high < max(open_, close):
        problems.append(("high", f"{high} is below max(open, close) = {max(open_, close)}"))
    if low > min(open_, close):
        problems.append(("low", f"{low} is above min(open, close) = {min(open_, close)}"))
    return problems
