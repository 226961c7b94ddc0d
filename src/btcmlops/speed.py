"""The bound on how fast sim time may run: one number that both the settings and the clock check.

It lives below both, so the settings can bound ``BTCMLOPS_CLOCK__MAX_SPEED`` by it without importing
the clock, and the clock can refuse a faster speed without importing the settings.
"""

from __future__ import annotations

from typing import Final

MAX_SPEED: Final = 10_000.0
"""The fastest a clock may run, in sim hours per real second (two years of data in under two seconds);
``BTCMLOPS_CLOCK__MAX_SPEED`` may lower it."""
