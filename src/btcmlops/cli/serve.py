"""``btcmlops serve``: the inference service under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from btcmlops.cli.common import (
    ReplayOption,
    no_blind_mlflow_retries,
    on_replay,
    refuse_placeholder_secrets,
    settings_of,
)
from btcmlops.cli.console import errors


def serve(
    ctx: typer.Context,
    replay: ReplayOption = None,
    host: Annotated[str | None, typer.Option(help="Interface to bind (default: setting).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: setting).")] = None,
) -> None:
    """Run the inference service (uvicorn): the champion's forecasts, hot-swapped on promotion."""

    import gc

    from btcmlops.serving import create_app
    from btcmlops.serving.server import run_server

    settings = on_replay(settings_of(ctx), replay)
    refuse_placeholder_secrets(settings)
    # The watcher has its own backoff.
    no_blind_mlflow_retries(ctx, timeout_s=settings.serve.registry_timeout_s)
    try:
        application = create_app(settings)
    except ValueError as error:
        errors.print(f"[red]cannot serve:[/red] {error} (or pass --replay DIR)")
        raise typer.Exit(1) from None
    # Imports (MLflow, pandas) leave ~1M long-lived objects; a full collection scanning them stalls
    # requests for 100+ ms. Freeze them out of the collector's reach, once per process, as long-running
    # servers do (not in the app's lifespan: an app started again in the same process would freeze again).
    gc.collect()
    gc.freeze()
    # Slow and idle clients are bounded there (header, body and keep-alive timeouts, a connection cap).
    run_server(
        application, settings.serve, host=host or settings.serve.host, port=port or settings.serve.port
    )
