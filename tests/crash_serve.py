"""A ``btcmlops serve`` that kills itself with SIGKILL at one named step of a change by hand.

Run as a script (``python tests/crash_serve.py --at STEP [--steps FILE]``) by
``tests/integration/test_service_crashes.py``. It builds what ``btcmlops serve`` builds, from the same
``BTCMLOPS_*`` settings (``create_app``, run by uvicorn); the one difference is the step hook of its
changes by hand (``ChampionChanges``, the seam ``create_app(on_step=...)``). At the first step boundary
named ``--at`` (``journal.begun``, ``registry.promoted_status``, ``registry.champion_alias``, ...) it
sends SIGKILL to its own process: no ``finally``, no answer to the request, the journal row left
pending, exactly as if the machine had died there. ``--steps`` appends every boundary passed to a
file, written before the kill, so a test knows where the process stopped.
"""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path

import uvicorn

from btcmlops.serving import create_app
from btcmlops.settings import Settings


class CrashPoint:
    """The step hook: records each boundary and kills this process at the named one."""

    def __init__(self, at: str, steps: Path | None) -> None:
        self._at = at
        self._steps = steps

    def __call__(self, name: str) -> None:
        if self._steps is not None:
            with self._steps.open("a") as out:
                out.write(f"{name}\n")
        if name == self._at:
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--at", required=True, help="the step boundary to die at (ChampionChanges' names)")
    parser.add_argument("--steps", type=Path, default=None, help="append every step boundary here")
    args = parser.parse_args()
    settings = Settings()  # as `btcmlops serve` does
    application = create_app(settings, on_step=CrashPoint(args.at, args.steps))
    uvicorn.run(
        application, host=settings.serve.host, port=settings.serve.port, log_level="info", access_log=False
    )


if __name__ == "__main__":
    main()
