"""A ``btcmlops trainer`` that can kill itself with SIGKILL at one step boundary of one month close.

Run as a script (``python tests/crash_trainer.py [--month YYYY-MM --at N] [--steps FILE]``) by
``tests/integration/test_trainer_crashes.py``. It builds what ``btcmlops trainer`` builds, from the same
``BTCMLOPS_*`` settings and through the same composition root (``btcmlops.bootstrap``: price store,
registry, contest, then ``TrainerService``), and runs the same loop until SIGTERM; the one difference
is the contest's step hook. That hook counts the step
boundaries passed while ``--month`` is being closed and, at the ``--at``-th (0-based), sends SIGKILL
to its own process: no ``finally``, no lease release, no flushed buffer, exactly as if the machine
had died there. ``--steps`` appends every step boundary of every month close (``YYYY-MM name``) to a
file, written before the kill, so a test knows where each run stopped.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

from btcmlops.bootstrap import await_registry, open_price_store, trainer_contest
from btcmlops.calendar import Month
from btcmlops.contest.changes import StepHook
from btcmlops.contest.contest import Contest
from btcmlops.contest.records import MonthOutcome
from btcmlops.services.trainer import TrainerService
from btcmlops.settings import Settings

logger = logging.getLogger("crash_trainer")


class CrashPoint:
    """The step hook: records each boundary and kills this process at the chosen one."""

    def __init__(self, month: Month | None, at: int | None, steps: Path | None) -> None:
        self.closing: Month | None = None
        self._month = month
        self._at = at
        self._steps = steps
        self._seen = 0

    def __call__(self, name: str) -> None:
        if self.closing is None:  # a change outside a month close (an external alias move): not counted
            return
        if self._steps is not None:
            with self._steps.open("a") as out:
                out.write(f"{self.closing} {name}\n")
        if self.closing != self._month or self._at is None:
            return
        if self._seen == self._at:
            logger.warning("crash point: SIGKILL at step %d of %s (%s)", self._at, self.closing, name)
            os.kill(os.getpid(), signal.SIGKILL)
        self._seen += 1


class CrashingContest(Contest):
    """``Contest`` whose step hook (a ``CrashPoint``) knows which month is being closed."""

    def __init__(self, *args: Any, on_step: StepHook, **kwargs: Any) -> None:
        assert isinstance(on_step, CrashPoint)
        super().__init__(*args, on_step=on_step, **kwargs)
        self._crash = on_step

    def close_month(self, month: Month, *, train_challenger: bool = True) -> MonthOutcome:
        self._crash.closing = month
        try:
            return super().close_month(month, train_challenger=train_challenger)
        finally:
            self._crash.closing = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--month", type=Month.parse, default=None, help="the month close to cut, YYYY-MM")
    parser.add_argument("--at", type=int, default=None, help="the step boundary (0-based) to die at")
    parser.add_argument("--steps", type=Path, default=None, help="append every step boundary here")
    args = parser.parse_args()

    # As `btcmlops trainer` does.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s trainer %(message)s")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("mlflow.utils.environment").setLevel(logging.ERROR)
    settings = Settings()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    # The trainer's own wiring, from the composition root; only the contest's class and hook differ.
    with open_price_store(settings) as store:
        registry = await_registry(settings, stop)
        if registry is None:
            return
        crash = CrashPoint(args.month, args.at, args.steps)
        contest = trainer_contest(settings, store, registry, on_step=crash, contest_type=CrashingContest)
        TrainerService(contest, store, settings.trainer).run(stop)


if __name__ == "__main__":
    main()
