"""The CLI's two consoles: everything printed passes one redaction (no password of a URL on a screen
or in a CI log)."""

from __future__ import annotations

import sys
from typing import IO

from rich.console import Console

from btcmlops.redaction import redacted_stream

LOG_WIDTH = 120
"""Columns the consoles use where they do not write to a terminal (a pipe, a file, a CI or container
log), instead of Rich's 80: wide enough for the replay's decision table (about 100), which at 80 cut
every cell short ("20…", "v1 164.98 / 83…"). A terminal keeps its own width."""


def _console(stream: IO[str], terminal: bool) -> Console:
    """A terminal's console wraps text at its width; elsewhere a message stays one line (a log is read
    by grep, not by eye, and a wrap inside a phrase hides it), tables drawn ``LOG_WIDTH`` wide."""
    if terminal:
        return Console(file=stream)
    return Console(file=stream, width=LOG_WIDTH, soft_wrap=True)


console = _console(redacted_stream(), sys.stdout.isatty())
errors = _console(redacted_stream(stderr=True), sys.stderr.isatty())
