"""Processes forked from an interpreter that has imported btcmlops once, instead of a fresh ``python`` each.

A ``btcmlops`` process spends ~2.5 CPU-seconds importing MLflow, LightGBM and pandas before it does
anything; the crash matrices start dozens. The tests that need a real process (a kill -9, a port, a
lease in its name) but not a fresh interpreter start theirs here: each worker keeps one
multiprocessing fork server that has imported the heavy modules, and every command is forked from it
into its own process and session, with its own environment, arguments and log file, and run as
``python -m MODULE`` or ``python SCRIPT`` would run it (``runpy``), atexit handlers included. A test
that watches what an import does (a warning, memory, start-up time) keeps starting ``python``.

This module imports only the standard library: the fork server and each child import it.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import runpy
import signal
import subprocess
import sys
import time
from pathlib import Path

PRELOAD = [
    "btcmlops.cli",
    "btcmlops.bootstrap",
    "btcmlops.services.trainer",
    "btcmlops.services.feed",
    "btcmlops.serving",
    "btcmlops.serving.server",
    "uvicorn",
    "mlflow.pyfunc",
    "mlflow.lightgbm",
    "pymysql",
    "pyarrow.pandas_compat",
    "statsmodels.regression.linear_model",
]
"""Imported once by the fork server: what ``btcmlops serve``, ``trainer``, ``feed`` and ``client`` and the
crash runners import on their way (the MariaDB driver, MLflow's model loader, the contest's statsmodels)."""
SESSION_WAIT_S = 10.0


def _run(command: list[str], env: dict[str, str], log_path: str) -> None:
    """In the forked child: a new session, output to ``log_path``, then the command as ``python`` runs it."""
    os.setsid()
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.environ.clear()
    os.environ.update(env)
    # The command runs as its own program would, not as a daemonic child of the test: a real process
    # may start processes of its own (the api's read workers), which multiprocessing refuses a daemon.
    multiprocessing.current_process().daemon = False
    code: object = 0
    try:
        if command[0] == "-m":
            sys.argv = [command[1], *command[2:]]
            runpy.run_module(command[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(command)
            sys.path[0] = str(Path(command[0]).resolve().parent)
            runpy.run_path(command[0], run_name="__main__")
    except SystemExit as done:
        code = done.code
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        atexit._run_exitfuncs()
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


class ForkedProcess:
    """What the tests use of ``subprocess.Popen`` (``pid``, ``poll``, ``wait``, ``returncode``,
    ``terminate``, ``kill``) for a
    command forked from the fork server; its exit status (``-9`` after a SIGKILL) comes from there."""

    def __init__(self, command: list[str], env: dict[str, str], log_path: Path) -> None:
        if command[0] == sys.executable:
            command = command[1:]
        self.args = command
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["forked", *PRELOAD])
        self._process = context.Process(target=_run, args=(command, env, str(log_path)), name=command[-1])
        self._process.daemon = True  # a test that fails to stop one does not hang its worker's exit
        self._process.start()
        assert self._process.pid is not None
        self.pid: int = self._process.pid
        # As with Popen(start_new_session=True): the process leads its group before anyone signals it.
        deadline = time.monotonic() + SESSION_WAIT_S
        while self.poll() is None and time.monotonic() < deadline:
            try:
                if os.getpgid(self.pid) == self.pid:
                    break
            except ProcessLookupError:
                break
            time.sleep(0.002)

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode

    def poll(self) -> int | None:
        return self._process.exitcode

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        code = self._process.exitcode
        if code is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return code
