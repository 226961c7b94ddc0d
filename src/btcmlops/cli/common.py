"""What the command groups share: the Settings the callback built, the refusals every service makes
before it starts, a replay's stores, signals and heartbeats."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from btcmlops.cli.console import errors
from btcmlops.settings import ConfigurationError, Settings


def settings_of(ctx: typer.Context) -> Settings:
    """The one Settings object the app's callback built from BTCMLOPS_* variables and .env."""
    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


def refuse_placeholder_secrets(settings: Settings) -> None:
    """Stop a service that would run with a secret copied from an example (unless in demo mode)."""
    found = settings.placeholder_secrets()
    if found:
        errors.print(
            f"[red]refusing to start:[/red] {', '.join(found)} still hold(s) a placeholder or demo secret; "
            "set your own (for a laptop demo only: BTCMLOPS_DEMO=true)",
            soft_wrap=True,  # variable names stay whole, to be copied
        )
        raise typer.Exit(2)


def on_replay(settings: Settings, replay: Path | None) -> Settings:
    """``settings`` pointed at a replay's output directory (its SQLite price and MLflow stores)."""
    if replay is None:
        return settings
    return settings.model_copy(
        update={
            "store": settings.store.model_copy(
                update={"url": f"sqlite:///{(replay / 'prices.db').resolve()}"}
            ),
            "mlflow": settings.mlflow.model_copy(
                update={"tracking_uri": f"sqlite:///{(replay / 'mlflow.db').resolve()}"}
            ),
        }
    )


ReplayOption = Annotated[
    Path | None,
    typer.Option(
        exists=True, file_okay=False, help="Work on a replay's output directory (its SQLite stores)."
    ),
]


class ProcessEntry:
    """The process's own environment, handed to the commands by the console script (:func:`main`) only.

    MLflow's client reads its HTTP settings from environment variables only, so a command that talks to
    MLflow must write them; only a process started as ``btcmlops`` may, once, before MLflow is used. A
    command invoked in-process (Typer's ``CliRunner``, another program calling the app) is handed none
    and writes nothing: ``os.environ`` is the caller's.
    """

    def __init__(self, environ: MutableMapping[str, str]) -> None:
        self._environ = environ

    def mlflow_http(self, *, timeout_s: float) -> None:
        """MLflow's HTTP retries off and its timeout ``timeout_s`` (unless the operator set them)."""
        self._environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        self._environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(max(1, int(timeout_s))))


PROCESS_ENTRY = "btcmlops.process_entry"
"""Key of the :class:`ProcessEntry` in the click context's ``meta`` (None when invoked in-process)."""


def no_blind_mlflow_retries(ctx: typer.Context, *, timeout_s: float) -> None:
    """Turn MLflow's own HTTP retries off (unless set): ours re-read the registry first.

    MLflow's client retries a failed call for minutes, and a create whose answer was lost (a 5xx from
    a proxy, a dropped connection) would be sent again and make a second run or version. Every
    btcmlops caller retries on its own after re-reading what exists (the contest's steps are
    idempotent, the watcher backs off), so one attempt per call is what they want. Written by the
    process entry point only (:class:`ProcessEntry`); in-process, MLflow keeps the caller's settings.
    """
    entry = ctx.meta.get(PROCESS_ENTRY)
    if isinstance(entry, ProcessEntry):
        entry.mlflow_http(timeout_s=timeout_s)


@contextmanager
def existing_store_only(ctx: typer.Context) -> Iterator[None]:
    """For a command that reads what is there: no price store, exit 1 saying where it looked and how to
    point the command at the stack's (instead of creating an empty one and reporting on that)."""
    from btcmlops.bootstrap import NoPriceStoreError

    try:
        yield
    except NoPriceStoreError as error:
        command = " ".join(["btcmlops", *ctx.command_path.split()[1:]])
        errors.print(
            f"[red]{error}[/red]: set BTCMLOPS_STORE__URL or run with the stack's settings "
            f"(e.g. `uv run --env-file stack.env {command}`)",
            soft_wrap=True,
            highlight=False,
            markup=True,
        )
        raise typer.Exit(1) from None


def setting_name(loc: tuple[int | str, ...]) -> str:
    """The environment variable of a setting at pydantic's ``loc``, e.g. BTCMLOPS_MODEL__DEVICE."""
    return "BTCMLOPS_" + "__".join(str(part).upper() for part in loc)


def training_device(settings: Settings) -> str:
    """The device the model settings will fit on, checked here; exit 2 if it cannot be had."""
    from btcmlops.model import check_device

    try:
        return check_device(settings.model)
    except ConfigurationError as error:
        errors.print(f"[red]configuration error:[/red] {error}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from None


def heartbeat(settings: Settings) -> Callable[[], None] | None:
    """Touch BTCMLOPS_HEARTBEAT_FILE after every round, for `btcmlops health --heartbeat`."""
    path = settings.heartbeat_file
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.touch


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM: a service finishes its round and stops."""
    stop = threading.Event()
    for name in ("SIGINT", "SIGTERM"):
        signal.signal(getattr(signal, name), lambda *_: stop.set())
    return stop
