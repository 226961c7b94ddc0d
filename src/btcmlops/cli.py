"""``btcmlops``: the command line. A thin layer: parse, build Settings once, call the package, print."""

from __future__ import annotations

import logging
import signal
import tempfile
import threading
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pydantic
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from btcmlops.redaction import install_log_redaction, redacted_stream
from btcmlops.settings import Settings

if TYPE_CHECKING:
    from btcmlops.clock import SimClock
    from btcmlops.contest import Contest
    from btcmlops.contest.changes import ChampionChanges
    from btcmlops.store import AuditEntry, PriceStore

app = typer.Typer(
    help="btcmlops: hourly BTC forecasts, a fair champion/challenger contest, MLflow.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # main() prints what no command caught, redacted
)
data_app = typer.Typer(help="Load and fetch candles into the price store.", no_args_is_help=True)
app.add_typer(data_app, name="data")
# Everything printed passes one redaction (no password of a URL on a screen or in a CI log).
console = Console(file=redacted_stream())
errors = Console(file=redacted_stream(stderr=True))


def _settings(ctx: typer.Context) -> Settings:
    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


def _refuse_placeholder_secrets(settings: Settings) -> None:
    """Stop a service that would run with a secret copied from an example (unless in demo mode)."""
    found = settings.placeholder_secrets()
    if found:
        errors.print(
            f"[red]refusing to start:[/red] {', '.join(found)} still hold(s) a placeholder or demo secret; "
            "set your own (for a laptop demo only: BTCMLOPS_DEMO=true)"
        )
        raise typer.Exit(2)


def _on_replay(settings: Settings, replay: Path | None) -> Settings:
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


def _no_blind_mlflow_retries(*, timeout_s: float) -> None:
    """Turn MLflow's own HTTP retries off (unless set): ours re-read the registry first.

    MLflow's client retries a failed call for minutes, and a create whose answer was lost (a 5xx from
    a proxy, a dropped connection) would be sent again and make a second run or version. Every
    btcmlops caller retries on its own after re-reading what exists (the contest's steps are
    idempotent, the watcher backs off), so one attempt per call is what they want.
    """
    import os

    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(max(1, int(timeout_s))))


def _store_url(settings: Settings) -> str:
    return settings.store.url or f"sqlite:///{(settings.home / 'prices.db').resolve()}"


@app.callback()
def _main(ctx: typer.Context) -> None:
    """Build the one Settings object from BTCMLOPS_* variables and .env."""
    install_log_redaction()
    # MLflow's INFO lines (schema creation) and its note that the venv has no pip are noise here.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("mlflow.utils.environment").setLevel(logging.ERROR)
    try:
        ctx.obj = Settings()
    except pydantic.ValidationError as error:
        for problem in error.errors():
            reason = problem["msg"].removeprefix("Value error, ")
            errors.print(
                f"[red]configuration error:[/red] {_setting_name(problem['loc'])}: {reason}",
                soft_wrap=True,
                highlight=False,
            )
        raise typer.Exit(2) from None


def _setting_name(loc: tuple[int | str, ...]) -> str:
    """The environment variable of a setting at pydantic's ``loc``, e.g. BTCMLOPS_MODEL__DEVICE."""
    return "BTCMLOPS_" + "__".join(str(part).upper() for part in loc)


def _training_device(settings: Settings) -> str:
    """The device the model settings will fit on, checked here; exit 2 if it cannot be had."""
    from btcmlops.model import check_device
    from btcmlops.settings import ConfigurationError

    try:
        return check_device(settings.model)
    except ConfigurationError as error:
        errors.print(f"[red]configuration error:[/red] {error}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from None


@data_app.command("load")
def data_load(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="Candle file (CSV, .gz or .zip).")
    ],
    fmt: Annotated[
        str | None, typer.Option("--format", help="project, binance or cryptodatadownload (default: detect).")
    ] = None,
) -> None:
    """Validate FILE and upsert its candles into the price store (all or nothing)."""
    from btcmlops.data import CandleFileError, CandleFormat, load_file_into_store
    from btcmlops.store import PriceStore

    settings = _settings(ctx)
    store = PriceStore(_store_url(settings), settings.store)
    try:
        store.migrate()
        report = load_file_into_store(file, store, CandleFormat(fmt) if fmt else None)
    except CandleFileError as error:
        errors.print(f"[red]refused:[/red] {error}\nnothing from {file} was stored.")
        raise typer.Exit(1) from None
    finally:
        store.dispose()
    _print_load(report)


def _print_load(report: object) -> None:
    from btcmlops.data import LoadReport

    assert isinstance(report, LoadReport)
    upsert = report.upsert
    console.print(
        f"{report.file.path}: {len(report.file.candles)} candles ({report.file.format.value}); "
        f"inserted {upsert.inserted}, updated {upsert.updated}, unchanged {upsert.unchanged}"
    )
    for gap in report.file.gaps:
        console.print(
            f"[yellow]gap:[/yellow] {gap.missing_hours} missing hour(s) from {gap.start} to {gap.end}"
        )


@data_app.command("fetch")
def data_fetch(
    ctx: typer.Context,
    start: Annotated[str, typer.Option(help="First month, YYYY-MM.")],
    end: Annotated[str, typer.Option(help="Last month, YYYY-MM.")],
    symbol: Annotated[str | None, typer.Option(help="Binance spot symbol (default: setting).")] = None,
) -> None:
    """Download Binance's monthly 1h kline archives, verify their SHA-256 and load them."""
    from btcmlops.data import CandleFileError, FetchError, fetch_binance_monthly, load_files_into_store
    from btcmlops.store import PriceStore

    settings = _settings(ctx)
    store = PriceStore(_store_url(settings), settings.store)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            files = fetch_binance_monthly(
                symbol or settings.data.symbol,
                start,
                end,
                base_url=settings.data.archive_base_url,
                timeout_s=settings.data.fetch_timeout_s,
                dest_dir=Path(scratch),
            )
            store.migrate()
            report = load_files_into_store(files, store)
    except (FetchError, CandleFileError, ValueError) as error:
        errors.print(f"[red]fetch failed:[/red] {error}\nnothing was stored.")
        raise typer.Exit(1) from None
    finally:
        store.dispose()
    _print_load(report)


@app.command()
def simulate(
    ctx: typer.Context,
    data: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Candle file (default: the shipped 2023-2024)."),
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Output directory (a previous replay there moves to OUT.previous).")
    ] = Path("out/replay"),
) -> None:
    """Replay the champion/challenger contest over a candle file, month by month."""
    from btcmlops.data import CandleFileError
    from btcmlops.replay import ReplayError, run_replay

    settings = _settings(ctx)
    data_file = data or settings.data.file
    device = _training_device(settings)
    if settings.model.family != "lightgbm" or device != "cpu":
        console.print(f"training {settings.model.family} on {device}")
    console.print(f"replaying [bold]{data_file}[/bold] into [bold]{out}[/bold]")
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("loading candles", total=None)

        def on_month(month: object, done: int, total: int, outcome: object) -> None:
            progress.update(task, total=total, completed=done, description=f"month {month} closed")

        try:
            result = run_replay(settings, data_file, out, on_month=on_month)
        except (CandleFileError, ReplayError) as error:
            errors.print(f"[red]replay refused:[/red] {error}")
            raise typer.Exit(1) from None
    _print_summary(result.summary)
    data_info = result.summary.get("data")
    if isinstance(data_info, dict) and data_info.get("stopped_early"):
        console.print(f"[yellow]note:[/yellow] {data_info['stopped_early']}", soft_wrap=True)
    # soft_wrap: paths and the command must stay on one line to be copied.
    console.print(f"report:      {result.report_html}  (and {result.report_png.name})", soft_wrap=True)
    console.print(f"predictions: {result.predictions_path}", soft_wrap=True)
    console.print(f"summary:     {result.summary_path}", soft_wrap=True)
    if result.previous is not None:
        console.print(
            f"previous:    {result.previous}  (the replay {out} held, as it was left)", soft_wrap=True
        )
    console.print(f"MLflow UI:   {result.ui_command}", soft_wrap=True, markup=False, highlight=False)
    mlflow_info = result.summary.get("mlflow")
    if isinstance(mlflow_info, dict) and result.tracking_uri.startswith("sqlite:"):
        for label, key in (("  contests:", "runs_url"), ("  model:", "model_url")):
            console.print(f"{label:<12} {mlflow_info[key]}", soft_wrap=True, markup=False, highlight=False)


@app.command()
def serve(
    ctx: typer.Context,
    replay: ReplayOption = None,
    host: Annotated[str | None, typer.Option(help="Interface to bind (default: setting).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: setting).")] = None,
) -> None:
    """Run the inference service (uvicorn): the champion's forecasts, hot-swapped on promotion."""

    from btcmlops.serving import create_app
    from btcmlops.serving.server import run_server

    settings = _on_replay(_settings(ctx), replay)
    _refuse_placeholder_secrets(settings)
    _no_blind_mlflow_retries(timeout_s=settings.serve.registry_timeout_s)  # the watcher has its own backoff
    try:
        application = create_app(settings)
    except ValueError as error:
        errors.print(f"[red]cannot serve:[/red] {error} (or pass --replay DIR)")
        raise typer.Exit(1) from None
    # Slow and idle clients are bounded there (header, body and keep-alive timeouts, a connection cap).
    run_server(
        application, settings.serve, host=host or settings.serve.host, port=port or settings.serve.port
    )


clock_app = typer.Typer(
    help="Show or change the shared sim clock (kept in the price store).", no_args_is_help=True
)
app.add_typer(clock_app, name="clock")


def _open_store(settings: Settings) -> PriceStore:
    from btcmlops.store import PriceStore

    store = PriceStore(_store_url(settings), settings.store)
    store.migrate()
    return store


def _show_clock(clock: SimClock | None) -> None:
    from btcmlops.clock import last_closed_hour

    if clock is None:
        console.print("no sim clock yet: `btcmlops clock reset` starts one")
        return
    now = clock.sim_now(datetime.now(UTC))
    console.print(
        f"sim now {now:%Y-%m-%dT%H:%M:%SZ} (last closed hour {last_closed_hour(now):%Y-%m-%dT%H:00Z}), "
        f"speed {clock.speed:g} sim h/s{', paused' if clock.paused else ''}"
    )


@clock_app.command("show")
def clock_show(ctx: typer.Context) -> None:
    """Print sim time, speed and whether the clock is paused."""
    store = _open_store(_settings(ctx))
    try:
        _show_clock(store.read_clock())
    finally:
        store.dispose()


@clock_app.command("reset")
def clock_reset(
    ctx: typer.Context,
    speed: Annotated[float | None, typer.Option(help="Sim hours per real second (default: setting).")] = None,
    paused: Annotated[bool, typer.Option(help="Start paused.")] = False,
    start: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M"], help="Sim start, UTC (default: setting)."),
    ] = None,
) -> None:
    """Start the clock again at BTCMLOPS_CLOCK__START (or --start)."""
    from btcmlops.clock import reset_clock

    settings = _settings(ctx)
    _refuse_bad_speed(speed, settings)
    store = _open_store(settings)
    try:
        current = store.read_clock()
        clock = reset_clock(
            settings.clock,
            datetime.now(UTC),
            start=None if start is None else start.replace(tzinfo=UTC),
            speed=speed,
            paused=paused,
            end_at=current.end_at if current else None,
        )
        store.write_clock(clock)
        _show_clock(clock)
    finally:
        store.dispose()


@clock_app.command("set")
def clock_set(
    ctx: typer.Context,
    speed: Annotated[float | None, typer.Option(help="New speed, sim hours per real second.")] = None,
    pause: Annotated[bool | None, typer.Option("--pause/--resume", help="Pause or resume.")] = None,
) -> None:
    """Change the speed, or pause or resume, without moving sim time."""
    settings = _settings(ctx)
    _refuse_bad_speed(speed, settings)
    store = _open_store(settings)
    try:
        clock = store.read_clock()
        if clock is None:
            errors.print("no sim clock yet: `btcmlops clock reset` starts one")
            raise typer.Exit(1)
        now = datetime.now(UTC)
        if speed is not None:
            clock = clock.with_speed(speed, now, max_speed=settings.clock.max_speed)
        if pause is not None:
            clock = clock.pause(now) if pause else clock.resume(now)
        store.write_clock(clock)
        _show_clock(clock)
    finally:
        store.dispose()


def _refuse_bad_speed(speed: float | None, settings: Settings) -> None:
    """Exit with the reason before anything is written if ``speed`` is no speed a clock may run at."""
    from btcmlops.clock import check_speed

    if speed is None:
        return
    try:
        check_speed(speed, settings.clock.max_speed)
    except ValueError as error:
        errors.print(f"--speed: {error}")
        raise typer.Exit(2) from None


def _heartbeat(settings: Settings) -> Callable[[], None] | None:
    """Touch BTCMLOPS_HEARTBEAT_FILE after every round, for `btcmlops health --heartbeat`."""
    path = settings.heartbeat_file
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.touch


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for name in ("SIGINT", "SIGTERM"):
        signal.signal(getattr(signal, name), lambda *_: stop.set())
    return stop


@app.command()
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
    import pandas as pd

    from btcmlops.data import read_candle_file
    from btcmlops.services.feed import MarketFeed
    from btcmlops.services.retry import Backoff, retrying
    from btcmlops.store import PriceStore

    logging.basicConfig(level=logging.INFO, format="%(asctime)s feed %(message)s")
    settings = _settings(ctx)
    _refuse_placeholder_secrets(settings)
    candles = read_candle_file(data or settings.data.file).candles
    store = PriceStore(_store_url(settings), settings.store)
    end_at = (candles["open_time"].iloc[-1] + pd.Timedelta(hours=1)).to_pydatetime()

    def prepare() -> bool:  # the store may still be starting: retried until it answers
        store.migrate()
        if start_clock and store.read_clock() is None:
            from btcmlops.clock import reset_clock

            clock = reset_clock(settings.clock, datetime.now(UTC), end_at=end_at)
            store.write_clock(clock)
            logging.getLogger(__name__).info(
                "started the sim clock at %s (%s)", settings.clock.start, clock.hold_reason
            )
        store.update_clock(lambda clock: clock if clock.end_at == end_at else clock.with_end(end_at))
        return True

    stop = _stop_on_signals()
    try:
        if retrying(prepare, stop, Backoff(0.5, settings.trainer.retry_max_s), "preparing the store"):
            MarketFeed(store, candles, retry_max_s=settings.trainer.retry_max_s).run(
                stop, on_round=_heartbeat(settings)
            )
    finally:
        store.dispose()


@app.command()
def trainer(ctx: typer.Context) -> None:
    """Close each month with the contest once sim time has passed its end (train, score, promote)."""
    from btcmlops.contest import Contest
    from btcmlops.registry import resolve_tracking
    from btcmlops.services.retry import Backoff, retrying
    from btcmlops.services.trainer import TrainerService, wait_for_registry
    from btcmlops.store import PriceStore

    logging.basicConfig(level=logging.INFO, format="%(asctime)s trainer %(message)s")
    settings = _settings(ctx)
    _refuse_placeholder_secrets(settings)
    device = _training_device(settings)
    logging.getLogger(__name__).info(
        "training %s models on %s (BTCMLOPS_MODEL__FAMILY, BTCMLOPS_MODEL__DEVICE)",
        settings.model.family,
        device,
    )
    _no_blind_mlflow_retries(timeout_s=60)
    store = PriceStore(_store_url(settings), settings.store)
    tracking_uri, artifacts = resolve_tracking(
        settings.mlflow.tracking_uri, settings.home / "mlflow", settings.home / "cache"
    )
    stop = _stop_on_signals()

    def migrate() -> bool:  # the store may still be starting: retried until it answers
        store.migrate()
        return True

    if not retrying(migrate, stop, Backoff(0.5, settings.trainer.retry_max_s), "migrating the store"):
        store.dispose()
        return
    registry = wait_for_registry(
        tracking_uri,
        settings.mlflow.experiment,
        settings.mlflow.registered_model,
        stop,
        artifact_location=artifacts,
    )
    if registry is None:
        return
    service: TrainerService | None = None

    def fence(step: str) -> None:  # every registry step first checks that the lease is still ours
        if service is not None:
            service.fence(step)

    contest = Contest(
        settings.model,
        settings.contest,
        registry,
        store,
        store,
        sim_now=_sim_now_of(store),
        on_step=fence,
        change_grace_s=settings.store.change_grace_s,
    )
    service = TrainerService(
        contest, store, settings.trainer, wait_for_service=settings.clock.wait_for_service
    )
    try:
        service.run(stop, on_round=_heartbeat(settings))
    finally:
        store.dispose()


def _sim_now_of(store: PriceStore) -> Callable[[], datetime | None]:
    """Sim time now by the store's clock (None where there is no clock: a replay's store)."""

    def sim_now() -> datetime | None:
        clock = store.read_clock()
        return None if clock is None else clock.sim_now(datetime.now(UTC))

    return sim_now


@app.command()
def client(ctx: typer.Context) -> None:
    """Ask the inference service for the forecast from every hour, as soon as each may be asked."""
    import httpx

    from btcmlops.services.hourly_client import HourlyClient

    logging.basicConfig(level=logging.INFO, format="%(asctime)s client %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise here
    settings = _settings(ctx).client
    with httpx.Client(base_url=settings.api_url, timeout=settings.timeout_s) as http:
        HourlyClient(http).run(
            _stop_on_signals(), interval_s=settings.interval_s, on_round=_heartbeat(_settings(ctx))
        )


@app.command()
def init(
    ctx: typer.Context,
    data: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Candle file the feed will play (default: setting).")
    ] = None,
) -> None:
    """Prepare the live stack once: check the candle file, migrate the price store, create the bucket."""
    from btcmlops.data import CandleFileError
    from btcmlops.services.setup import prepare_stack
    from btcmlops.store import PriceStore

    settings = _settings(ctx)
    _refuse_placeholder_secrets(settings)
    store = PriceStore(_store_url(settings), settings.store)
    try:
        report = prepare_stack(store, settings.s3, data or settings.data.file)
    except (CandleFileError, FileNotFoundError) as error:
        errors.print(f"[red]init failed:[/red] {error}")
        raise typer.Exit(1) from None
    finally:
        store.dispose()
    console.print(f"price store ready: {_store_url(settings).split('@')[-1]}", soft_wrap=True)
    console.print(f"candle file ok: {report.data_file} ({report.candles_in_file:,} candles)", soft_wrap=True)
    if report.bucket is not None:
        console.print(f"bucket {report.bucket}: {'created' if report.bucket_created else 'already there'}")


@app.command()
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


@app.command()
def dashboard(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Interface to bind (default: setting).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: setting).")] = None,
) -> None:
    """Run the Streamlit dashboard over the inference service at BTCMLOPS_DASHBOARD__API_URL."""
    import os
    import sys

    from btcmlops import dashboard as package

    settings = _settings(ctx).dashboard
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


model_app = typer.Typer(
    help="Promote, roll back and list champions (journal first, every change in the audit).",
    no_args_is_help=True,
)
registry_app = typer.Typer(help="Check the registry's invariants, or finish a change cut off half-way.")
app.add_typer(model_app, name="model")
app.add_typer(registry_app, name="registry")


def _open_contest(settings: Settings) -> tuple[PriceStore, Contest]:
    """The price store and a Contest over it and the configured registry (or a replay's)."""
    from btcmlops.contest import Contest
    from btcmlops.registry import ModelRegistry, resolve_tracking

    _no_blind_mlflow_retries(timeout_s=60)
    store = _open_store(settings)
    tracking_uri, artifacts = resolve_tracking(
        settings.mlflow.tracking_uri, settings.home / "mlflow", settings.home / "cache"
    )
    registry = ModelRegistry(
        tracking_uri,
        settings.mlflow.experiment,
        settings.mlflow.registered_model,
        artifact_location=artifacts,
    )
    return store, Contest(
        settings.model, settings.contest, registry, store, store, sim_now=_sim_now_of(store)
    )


def _change_champion(settings: Settings, change: Callable[[ChampionChanges, str], AuditEntry]) -> None:
    """Make one champion change through the state machine, as the OS user; print it or why not."""
    from btcmlops.contest.changes import ChangeRefusedError, os_actor
    from btcmlops.store import ChangeInProgressError

    store, contest = _open_contest(settings)
    try:
        _print_change(change(contest.changes, os_actor()))
    except (ChangeRefusedError, ChangeInProgressError) as error:
        errors.print(f"[red]refused:[/red] {error}")
        raise typer.Exit(1) from None
    finally:
        store.dispose()


def _print_change(row: AuditEntry) -> None:
    console.print(
        f"champion v{row.from_version} -> [bold]v{row.to_version}[/bold] ({row.source}, by {row.actor}): "
        f"{row.reason}",
        soft_wrap=True,
    )


@model_app.command("promote")
def model_promote(
    ctx: typer.Context,
    version: Annotated[int, typer.Argument(help="The version to make champion.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit).")],
    replay: ReplayOption = None,
) -> None:
    """Make VERSION the champion now; the old champion is archived."""
    _change_champion(
        _on_replay(_settings(ctx), replay),
        lambda changes, actor: changes.promote(version, reason=reason, actor=actor),
    )


@model_app.command("rollback")
def model_rollback(
    ctx: typer.Context,
    reason: Annotated[str, typer.Option(help="Why (kept in the audit).")],
    replay: ReplayOption = None,
) -> None:
    """Put the previous champion back."""
    _change_champion(
        _on_replay(_settings(ctx), replay),
        lambda changes, actor: changes.rollback(reason=reason, actor=actor),
    )


@model_app.command("history")
def model_history(ctx: typer.Context, replay: ReplayOption = None) -> None:
    """List every change of champion: when (real and sim time), who, from, to, why, by what."""
    store, contest = _open_contest(_on_replay(_settings(ctx), replay))
    try:
        contest.changes.sync_with_registry()
        rows = contest.changes.history()
    finally:
        store.dispose()
    if not rows:
        console.print("no champion yet")
    for row in rows:  # one line each, so a reason stays whole and greppable
        sim = f"sim {row.sim_time:%Y-%m-%d %H:%M}Z" if row.sim_time else "sim -"
        was = f"v{row.from_version}" if row.from_version is not None else "-"
        console.print(
            f"#{row.id}  {row.changed_at:%Y-%m-%d %H:%M:%S}Z  {sim}  {was} -> "
            f"[bold]v{row.to_version}[/bold]  {row.source} by {row.actor}: {row.reason}",
            soft_wrap=True,
            highlight=False,
        )


@registry_app.command("check")
def registry_check(ctx: typer.Context, replay: ReplayOption = None) -> None:
    """Print every broken invariant (exit 1), or that the registry is sound."""
    store, contest = _open_contest(_on_replay(_settings(ctx), replay))
    try:
        problems = contest.changes.problems()
    finally:
        store.dispose()
    if problems:
        for problem in problems:
            errors.print(f"[red]✗[/red] {problem}", soft_wrap=True)
        raise typer.Exit(1)
    console.print(
        "[green]✓[/green] registry sound: one production version holding 'champion', at most one staging "
        "holding 'challenger', the rest archived; every closed month has one decision row and one "
        "contest run with the same numbers; no month skipped; nothing pending",
        soft_wrap=True,
    )


@registry_app.command("reconcile")
def registry_reconcile(ctx: typer.Context, replay: ReplayOption = None) -> None:
    """Finish a change a dead process left half-done, record external alias moves, repair status tags."""
    store, contest = _open_contest(_on_replay(_settings(ctx), replay))
    try:
        finished = contest.reconcile(grace_s=0.0)  # by hand: whatever is pending is finished now
        problems = contest.changes.problems()
    finally:
        store.dispose()
    for outcome in finished:
        console.print(f"finished the close of {outcome.month}")
    for problem in problems:
        errors.print(f"[red]✗[/red] {problem}", soft_wrap=True)
    if problems:
        raise typer.Exit(1)
    console.print("[green]✓[/green] reconciled; registry sound")


def _print_summary(summary: dict[str, object]) -> None:
    history = Table(title="Champion history")
    history.add_column("version", justify="right")
    history.add_column("serves from")
    for item in summary["champion_history"]:  # type: ignore[attr-defined]
        history.add_row(f"v{item['version']}", item["from_month"])
    console.print(history)
    decisions = Table(title="Contest decisions: MAE on the shadow month (USDT)")
    for column in ("month", "champion", "challenger", "naive", "decision"):
        decisions.add_column(column, justify="right", no_wrap=True)
    for item in summary["decisions"]:  # type: ignore[attr-defined]
        decisions.add_row(
            item["month"],
            f"v{item['champion_version']} {item['champion_mae']:.2f}",
            f"v{item['challenger_version']} {item['challenger_mae']:.2f}",
            f"{item['naive_mae']:.2f}",
            "[green]promoted[/green]" if item["promoted"] else "archived",
        )
    console.print(decisions)
    overall = summary["overall"]
    if isinstance(overall, dict):
        console.print(
            f"served MAE {overall['served']['mae']:.2f} USDT vs naive {overall['naive']['mae']:.2f} USDT "
            f"(skill {overall['skill']:+.3%}) over {overall['served']['n']} served hours; "
            f"{summary['promotions']} promotion(s); final champion v{summary['final_champion']}"
        )
    timings = summary.get("timings", {})
    if isinstance(timings, dict):
        console.print(
            f"wall {timings.get('total_s', 0):.1f} s: training {timings.get('training_s', 0):.1f} s, "
            f"MLflow {timings.get('mlflow_s', 0):.1f} s"
        )


def main() -> None:
    """Entry point of the ``btcmlops`` console script."""
    try:
        app()
    except Exception:  # what no command caught: its traceback, through the same redaction as the rest
        errors.print(traceback.format_exc(), markup=False, highlight=False, soft_wrap=True)
        raise SystemExit(1) from None
