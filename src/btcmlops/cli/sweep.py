"""``btcmlops sweep``: replay a grid of contest and model settings and print them side by side."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from btcmlops.cli.common import settings_of, training_device
from btcmlops.cli.console import console, errors
from btcmlops.cli.replay import (
    CandleFileOption,
    ExecutorOption,
    SchedulerOption,
    WorkersOption,
    with_executor,
)

if TYPE_CHECKING:
    import pandas as pd


def _grid_file(path: Path) -> dict[str, list[Any]]:
    """The fields of a TOML grid file: ``margin = [0, 0.01]``; a single value is a list of one."""
    try:
        content = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        errors.print(f"[red]sweep refused:[/red] {path}: {error}", soft_wrap=True)
        raise typer.Exit(2) from None
    return {name: value if isinstance(value, list) else [value] for name, value in content.items()}


def sweep(
    ctx: typer.Context,
    grid: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="A TOML grid file (margin = [0, 0.01], rule = [...]); an option given overrides its field.",
        ),
    ] = None,
    margin: Annotated[
        list[float] | None, typer.Option(help="Contest margin (repeat for several; default: the configured).")
    ] = None,
    rule: Annotated[
        list[str] | None, typer.Option(help="Promotion rule: margin or significance (repeatable).")
    ] = None,
    metric: Annotated[
        list[str] | None, typer.Option(help="The rule's metric: mae or interval_score (repeatable).")
    ] = None,
    window: Annotated[
        list[str] | None,
        typer.Option(help="Training window: expanding, or N for the last N months (repeatable)."),
    ] = None,
    family: Annotated[
        list[str] | None, typer.Option(help="Model family: lightgbm or xgboost (repeatable).")
    ] = None,
    data: CandleFileOption = None,
    out: Annotated[
        Path, typer.Option(help="Output directory: one folder per combination, summary.csv, sweep.html/png.")
    ] = Path("out/sweep"),
    executor: ExecutorOption = None,
    scheduler: SchedulerOption = None,
    workers: WorkersOption = None,
    share_fits: Annotated[
        bool,
        typer.Option(help="Hand combinations that differ only in contest settings the same fitted models."),
    ] = True,
) -> None:
    """Replay the contest once per combination of a grid of settings; compare them in one table."""
    from btcmlops.data import CandleFileError
    from btcmlops.replay import ReplayError
    from btcmlops.replay.sweep import SweepError, build_grid, run_sweep

    settings = with_executor(settings_of(ctx), executor, scheduler, workers)
    choices = _grid_file(grid) if grid is not None else {}
    given = {"margin": margin, "rule": rule, "metric": metric, "window": window, "family": family}
    choices.update({name: list(values) for name, values in given.items() if values})
    try:
        combinations = build_grid(choices, settings)
    except SweepError as error:
        errors.print(f"[red]sweep refused:[/red] {error}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from None
    for first in {combination.values["family"]: combination for combination in combinations}.values():
        training_device(first.settings)  # each family's library is there (exit 2 if not), before any replay
    data_file = data or settings.data.file
    console.print(
        f"sweeping {len(combinations)} combination(s) of {data_file} into [bold]{out}[/bold], fits on "
        f"{settings.replay.executor}" + (" shared between combinations" if share_fits else ""),
        soft_wrap=True,
    )

    def on_replay(combination: Any, index: int, total: int) -> None:
        console.print(f"[{index}/{total}] {combination.name}", markup=False, highlight=False)

    try:
        result = run_sweep(settings, combinations, data_file, out, share_fits=share_fits, on_replay=on_replay)
    except (CandleFileError, ReplayError) as error:
        errors.print(f"[red]sweep refused:[/red] {error}", soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(_table(result.table))
    console.print(
        f"{len(combinations)} replays in {result.wall_s:.1f} s; {result.fits_made} fits made, "
        f"{result.fits_reused} handed over again; significant promotion: one whose Diebold-Mariano test "
        "of the rule's metric has p < 0.05",
        soft_wrap=True,
    )
    console.print(f"summary: {result.summary_csv}", soft_wrap=True)
    console.print(f"chart:   {result.chart_html}  (and {result.chart_png.name})", soft_wrap=True)


def _number(value: object, form: str) -> str:
    return "-" if value is None or value != value else format(value, form)  # value != value: NaN


def _table(table: pd.DataFrame) -> Table:
    """The sweep's summary.csv as a Rich table: the grid's fields, then what each replay did."""
    shown = Table(title="Sweep: served forecasts over the replayed months, one replay per combination")
    columns = (
        "family", "window", "rule", "metric", "margin", "served MAE", "skill", "interval score",
        "interval skill", "coverage", "promotions", "significant", "final",
    )  # fmt: skip
    for column in columns:
        shown.add_column(column, justify="right", no_wrap=True)
    for row in table.to_dict("records"):
        shown.add_row(
            row["family"], row["window"], row["rule"], row["metric"], row["margin"],
            _number(row["served_mae"], ".2f"), _number(row["skill"], "+.2%"),
            _number(row["interval_score"], ".1f"), _number(row["interval_skill"], "+.2%"),
            _number(row["coverage"], ".1%"), f"{row['promotions']}/{row['contests']}",
            str(row["significant_promotions"]), f"v{row['final_champion']}",
        )  # fmt: skip
    return shown
