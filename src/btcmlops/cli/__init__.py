"""``btcmlops``: the command line. A thin layer: parse, build Settings once, call the package, print.

One module per command group, each thin over the composition root (``btcmlops.bootstrap``) and
importing what a command needs only when it runs (``btcmlops health``, a container's healthcheck,
must not load MLflow). Everything printed goes through the redacted consoles of ``cli.console``.
"""

from __future__ import annotations

import logging
import os
import traceback

import pydantic
import typer

from btcmlops.cli import services
from btcmlops.cli.clock import clock_app
from btcmlops.cli.common import PROCESS_ENTRY, ProcessEntry, setting_name
from btcmlops.cli.console import errors
from btcmlops.cli.data import data_app
from btcmlops.cli.model import model_app
from btcmlops.cli.registry import registry_app
from btcmlops.cli.replay import simulate
from btcmlops.cli.serve import serve
from btcmlops.cli.sweep import sweep
from btcmlops.redaction import install_log_redaction
from btcmlops.settings import Settings

__all__ = ["app", "main"]

app = typer.Typer(
    help="btcmlops: hourly BTC forecasts, a fair champion/challenger contest, MLflow.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # main() prints what no command caught, redacted
)


@app.callback()
def _main(ctx: typer.Context) -> None:
    """Build the one Settings object from BTCMLOPS_* variables and .env."""
    install_log_redaction()
    # MLflow's INFO lines (schema creation) and its note that the venv has no pip are noise here.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("mlflow.utils.environment").setLevel(logging.ERROR)
    # The console script hands its process's environment in; an in-process invocation hands none.
    ctx.meta[PROCESS_ENTRY] = ctx.obj if isinstance(ctx.obj, ProcessEntry) else None
    try:
        ctx.obj = Settings()
    except pydantic.ValidationError as error:
        for problem in error.errors():
            reason = problem["msg"].removeprefix("Value error, ")
            errors.print(
                f"[red]configuration error:[/red] {setting_name(problem['loc'])}: {reason}",
                soft_wrap=True,
                highlight=False,
            )
        raise typer.Exit(2) from None
    for note in ctx.obj.deprecations:  # once per process: this callback runs before any command
        errors.print(f"[yellow]warning:[/yellow] {note}", soft_wrap=True, highlight=False)


# In the order `btcmlops --help` has always listed them.
app.add_typer(data_app, name="data")
app.command()(simulate)
app.command()(sweep)
app.command()(serve)
app.add_typer(clock_app, name="clock")
for command in (
    services.feed,
    services.trainer,
    services.client,
    services.init,
    services.health,
    services.dashboard,
):
    app.command()(command)
app.add_typer(model_app, name="model")
app.add_typer(registry_app, name="registry")


def main() -> None:
    """Entry point of the ``btcmlops`` console script: the one writer of the process's environment."""
    try:
        app(obj=ProcessEntry(os.environ))
    except Exception:  # what no command caught: its traceback, through the same redaction as the rest
        errors.print(traceback.format_exc(), markup=False, highlight=False, soft_wrap=True)
        raise SystemExit(1) from None
