"""``btcmlops data``: load and fetch candles into the price store."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from btcmlops.cli.common import settings_of
from btcmlops.cli.console import console, errors

if TYPE_CHECKING:
    from btcmlops.data import LoadReport

data_app = typer.Typer(help="Load and fetch candles into the price store.", no_args_is_help=True)


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
    from btcmlops.bootstrap import open_price_store
    from btcmlops.data import CandleFileError, CandleFormat, load_file_into_store

    try:
        with open_price_store(settings_of(ctx)) as store:
            report = load_file_into_store(file, store, CandleFormat(fmt) if fmt else None)
    except CandleFileError as error:
        errors.print(f"[red]refused:[/red] {error}\nnothing from {file} was stored.")
        raise typer.Exit(1) from None
    _print_load(report)


@data_app.command("fetch")
def data_fetch(
    ctx: typer.Context,
    start: Annotated[str, typer.Option(help="First month, YYYY-MM.")],
    end: Annotated[str, typer.Option(help="Last month, YYYY-MM.")],
    symbol: Annotated[str | None, typer.Option(help="Binance spot symbol (default: setting).")] = None,
) -> None:
    """Download Binance's monthly 1h kline archives, verify their SHA-256 and load them."""
    from btcmlops.bootstrap import open_price_store
    from btcmlops.data import CandleFileError, FetchError, fetch_binance_monthly, load_files_into_store

    settings = settings_of(ctx)
    try:
        # Migrated only once the archives are in: a failed download leaves the store untouched.
        with open_price_store(settings, migrate=False) as store, tempfile.TemporaryDirectory() as scratch:
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
    _print_load(report)


def _print_load(report: LoadReport) -> None:
    upsert = report.upsert
    console.print(
        f"{report.file.path}: {len(report.file.candles)} candles ({report.file.format.value}); "
        f"inserted {upsert.inserted}, updated {upsert.updated}, unchanged {upsert.unchanged}"
    )
    for gap in report.file.gaps:
        console.print(
            f"[yellow]gap:[/yellow] {gap.missing_hours} missing hour(s) from {gap.start} to {gap.end}"
        )
