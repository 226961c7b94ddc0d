"""The CLI's two consoles: everything printed passes one redaction (no password of a URL on a screen
or in a CI log)."""

from __future__ import annotations

from rich.console import Console

from btcmlops.redaction import redacted_stream

console = Console(file=redacted_stream())
errors = Console(file=redacted_stream(stderr=True))
