"""The long-running services (``feed``, ``trainer``, ``client``, ``dashboard``), the live stack's one-off
preparation (``init``) and the containers' healthcheck (``health``), each thin over the composition
root ``btcmlops.bootstrap``."""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from btcmlops.cli.common import (
    heartbeat,
    no_blind_mlflow_retries,
    refuse_placeholder_secrets,
    settings_of,
    stop_on_signals,
    training_device,
)
from btcmlops.cli.console import console, errors

if TYPE_CHECKING:
    from btcmlops.services.trainer import TrainerService

logger = logging.getLogger(__name__)


def feed(
    ctx: typer.Context,
    data: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="Candle file (default: setting).")
    ] = None,
    start_clock: Annotated[
        bool, typer.Option(help="Start the sim clock at BTCMLOPS_CLOCK__START if the store has none.")
    ] = True,
) -> None:
    """Play the market: write each candle into the store once its hour has closed in sim time."""
    import httpx
    import pandas as pd

    from btcmlops.bootstrap import migrate_until_ready, open_price_store
    from btcmlops.clock import reset_clock
    from btcmlops.data import read_candle_file
    from btcmlops.services.feed import HourAnnouncer, MarketFeed
    from btcmlops.services.metrics import metrics_endpoint, pipeline_registry

    logging.basicConfig(level=logging.INFO, format="%(asctime)s feed %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a notice to the api each hour is noise here
    settings = settings_of(ctx)
    refuse_placeholder_secrets(settings)
    candles = read_candle_file(data or settings.data.file).candles
    end_at = (candles["open_time"].iloc[-1] + pd.Timedelta(hours=1)).to_pydatetime()
    with (
        open_price_store(settings, migrate=False) as store,  # the store may still be starting
        metrics_endpoint(
            pipeline_registry(store, settings.mlflow.registered_model),
            settings.metrics.host,
            settings.metrics.feed_port,
        ),
    ):

        def start_the_clock() -> None:
            if start_clock and store.read_clock() is None:
                clock = reset_clock(settings.clock, datetime.now(UTC), end_at=end_at)
                store.write_clock(clock)
                logger.info("started the sim clock at %s (%s)", settings.clock.start, clock.hold_reason)
            store.update_clock(lambda clock: clock if clock.end_at == end_at else clock.with_end(end_at))

        stop = stop_on_signals()
        if migrate_until_ready(store, settings, stop, then=start_the_clock):
            with contextlib.ExitStack() as notices:
                announcer = None
                if settings.feed.notify_url is not None:
                    http = notices.enter_context(httpx.Client(base_url=settings.feed.notify_url, timeout=2.0))
                    key = settings.serve.control_key
                    announcer = HourAnnouncer(http, None if key is None else key.get_secret_value())
                    notices.callback(announcer.close)
                MarketFeed(
                    store, candles, retry_max_s=settings.trainer.retry_max_s, on_written=announcer
                ).run(stop, on_round=heartbeat(settings))


def trainer(ctx: typer.Context) -> None:
    """Close each month with the contest once sim time has passed its end (train, score, promote)."""
    from prometheus_client import CollectorRegistry

    from btcmlops.bootstrap import await_registry, migrate_until_ready, open_price_store, trainer_contest
    from btcmlops.services.metrics import PipelineCollector, TrainerMetrics, metrics_endpoint
    from btcmlops.services.trainer import TrainerService

    logging.basicConfig(level=logging.INFO, format="%(asctime)s trainer %(message)s")
    settings = settings_of(ctx)
    refuse_placeholder_secrets(settings)
    device = training_device(settings)
    logger.info(
        "training %s models on %s (BTCMLOPS_MODEL__FAMILY, BTCMLOPS_MODEL__DEVICE)",
        settings.model.family,
        device,
    )
    no_blind_mlflow_retries(ctx, timeout_s=60)
    registry_of_metrics = CollectorRegistry()
    metrics = TrainerMetrics(registry_of_metrics)
    with (
        open_price_store(settings, migrate=False) as store,  # the store may still be starting
        metrics_endpoint(registry_of_metrics, settings.metrics.host, settings.metrics.trainer_port),
    ):
        registry_of_metrics.register(PipelineCollector(store, settings.mlflow.registered_model))
        stop = stop_on_signals()
        if not migrate_until_ready(store, settings, stop):
            return
        registry = await_registry(settings, stop)
        if registry is None:
            return
        service: TrainerService | None = None

        def fence(step: str) -> None:  # every registry step first checks that the lease is still ours
            if service is not None:
                service.fence(step)

        contest = trainer_contest(settings, store, registry, on_step=fence)
        service = TrainerService(
            contest,
            store,
            settings.trainer,
            wait_for_service=settings.clock.wait_for_service,
            metrics=metrics,
        )
        service.run(stop, on_round=heartbeat(settings))


def client(ctx: typer.Context) -> None:
    """Ask the inference service for the forecast from every hour, as soon as each may be asked."""
    import httpx

    from btcmlops.services.hourly_client import HourlyClient

    logging.basicConfig(level=logging.INFO, format="%(asctime)s client %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise here
    settings = settings_of(ctx)
    timeout_s, wait_s = settings.client.timeout_s, settings.client.wait_s
    with httpx.Client(
        base_url=settings.client.api_url, timeout=httpx.Timeout(timeout_s, read=timeout_s + wait_s)
    ) as http:
        HourlyClient(http, wait_s=settings.client.wait_s).run(
            stop_on_signals(), interval_s=settings.client.interval_s, on_round=heartbeat(settings)
        )


def init(
    ctx: typer.Context,
    data: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Candle file the feed will play (default: setting).")
    ] = None,
) -> None:
    """Prepare the live stack once: check the candle file, migrate the price store, create the bucket."""
    from btcmlops.bootstrap import open_price_store, price_store_url
    from btcmlops.data import CandleFileError
    from btcmlops.services.setup import prepare_stack

    settings = settings_of(ctx)
    refuse_placeholder_secrets(settings)
    try:
        with open_price_store(settings, migrate=False) as store:  # prepare_stack migrates it, in its order
            report = prepare_stack(store, settings.s3, data or settings.data.file)
    except (CandleFileError, FileNotFoundError) as error:
        errors.print(f"[red]init failed:[/red] {error}")
        raise typer.Exit(1) from None
    console.print(f"price store ready: {price_store_url(settings).split('@')[-1]}", soft_wrap=True)
    console.print(f"candle file ok: {report.data_file} ({report.candles_in_file:,} candles)", soft_wrap=True)
    if report.bucket is not None:
        console.print(f"bucket {report.bucket}: {'created' if report.bucket_created else 'already there'}")


def health(
    url: Annotated[str | None, typer.Argument(help="URL that must answer 200.")] = None,
    heartbeat: Annotated[
        Path | None, typer.Option(help="File that must have been touched within --max-age seconds.")
    ] = None,
    max_age: Annotated[float, typer.Option(help="Seconds, for --heartbeat.")] = 120.0,
    timeout: Annotated[float, typer.Option(help="Seconds, for URL.")] = 5.0,
) -> None:
    """Exit 0 when the service is healthy: for container healthchecks (no curl in the image)."""
    import time

    import httpx

    if (url is None) == (heartbeat is None):
        errors.print("give a URL or --heartbeat FILE")
        raise typer.Exit(2)
    if heartbeat is not None:
        if not heartbeat.exists():
            errors.print(f"unhealthy: no heartbeat file {heartbeat}")
            raise typer.Exit(1)
        age = time.time() - heartbeat.stat().st_mtime
        if age > max_age:
            errors.print(f"unhealthy: last heartbeat {age:.0f} s ago (more than {max_age:g} s)")
            raise typer.Exit(1)
        return
    assert url is not None
    try:
        status = httpx.get(url, timeout=timeout).status_code
    except httpx.HTTPError as error:
        errors.print(f"unhealthy: {url}: {error}")
        raise typer.Exit(1) from None
    if status != 200:
        errors.print(f"unhealthy: {url} answered {status}")
        raise typer.Exit(1)


def dashboard(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Interface to bind (default: setting).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: setting).")] = None,
) -> None:
    """Run the Streamlit dashboard over the inference service at BTCMLOPS_DASHBOARD__API_URL."""
    import os
    import sys

    from btcmlops import dashboard as package

    settings = settings_of(ctx).dashboard
    arguments = [
        sys.executable, "-m", "streamlit", "run", str(Path(package.__file__).with_name("app.py")),
        "--server.address", host or settings.host,
        "--server.port", str(port or settings.port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
        "--client.toolbarMode", "viewer",
    ]  # fmt: skip
    os.execv(sys.executable, arguments)  # the dashboard is Streamlit's process from here on
