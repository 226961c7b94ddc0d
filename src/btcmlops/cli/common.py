"""What the command groups share: the Settings the callback built, the refusals every service makes
before it starts, a replay's stores, signals and heartbeats."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
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


def no_blind_mlflow_retries(*, timeout_s: float) -> None:
    """Turn MLflow's own HTTP retries off (unless set): ours re-read the registry first.

    MLflow's client retries a failed call for minutes, and a create whose answer was lost (a 5xx from
    a proxy, a dropped connection) would be sent again and make a second run or version. Every
    btcmlops caller retries on its own after re-reading what exists (the contest's steps are
    idempotent, the watcher backs off), so one attempt per call is what they want.
    """
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(max(1, int(timeout_s))))


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
