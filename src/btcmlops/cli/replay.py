"""``btcmlops simulate``: replay the contest over a candle file, month by month, and print what it decided."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from btcmlops.cli.common import settings_of, training_device
from btcmlops.cli.console import console, errors
from btcmlops.settings import Settings

if TYPE_CHECKING:
    from concurrent.futures import Executor as FitExecutor


class Executor(StrEnum):
    """The choices of ``--executor`` (``ReplaySettings.executor``)."""

    SERIAL = "serial"
    PROCESSES = "processes"
    DASK = "dask"


def with_executor(
    settings: Settings, executor: Executor | None, scheduler: str | None, workers: int | None
) -> Settings:
    """``settings`` with the command line's executor options in place of the configured ones."""
    chosen = {"executor": executor and executor.value, "scheduler": scheduler, "workers": workers}
    update = {name: value for name, value in chosen.items() if value is not None}
    if scheduler is not None and (executor or settings.replay.executor) != "dask":
        raise typer.BadParameter("--scheduler is the address of a Dask scheduler: add --executor dask")
    return settings.model_copy(update={"replay": settings.replay.model_copy(update=update)})


CandleFileOption = Annotated[
    Path | None,
    typer.Option(exists=True, dir_okay=False, help="Candle file (default: the shipped 2023-2024)."),
]
ExecutorOption = Annotated[
    Executor | None,
    typer.Option(
        help="Where the models are fitted: serial (here), processes (a local pool) or dask "
        "(default: BTCMLOPS_REPLAY__EXECUTOR)."
    ),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option(
        help="A running Dask scheduler, tcp://host:8786, for --executor dask (default: a local cluster)."
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(min=1, help="Processes that fit at once (default: the cores / one fit's threads)."),
]
"""The options ``simulate`` and ``sweep`` share: the candles, and where the models are fitted."""


def simulate(
    ctx: typer.Context,
    data: CandleFileOption = None,
    out: Annotated[
        Path, typer.Option(help="Output directory (a previous replay there moves to OUT.previous).")
    ] = Path("out/replay"),
    executor: ExecutorOption = None,
    scheduler: SchedulerOption = None,
    workers: WorkersOption = None,
) -> None:
    """Replay the champion/challenger contest over a candle file, month by month."""
    from btcmlops.replay.executors import open_executor

    settings = with_executor(settings_of(ctx), executor, scheduler, workers)
    # The fits' workers start first: they import pandas and LightGBM while this process imports the
    # replay (MLflow, the stores, the report), rather than after it.
    with open_executor(settings.replay, settings.model) as fits_on:
        _simulate(settings, data, out, fits_on)


def _simulate(settings: Settings, data: Path | None, out: Path, fits_on: FitExecutor | None) -> None:
    """Run the replay with the fits on ``fits_on`` (None: here) and print what it decided."""
    from btcmlops.data import CandleFileError
    from btcmlops.replay import ReplayError, run_replay

    data_file = data or settings.data.file
    device = training_device(settings)
    if settings.model.family != "lightgbm" or device != "cpu":
        console.print(f"training {settings.model.family} on {device}")
    if settings.replay.executor != "serial":
        from btcmlops.replay.executors import worker_count

        where = (
            settings.replay.scheduler or f"{worker_count(settings.replay, settings.model)} local processes"
        )
        console.print(f"fitting every month ahead on {settings.replay.executor} ({where})")
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
            result = run_replay(settings, data_file, out, on_month=on_month, executor=fits_on)
        except (CandleFileError, ReplayError) as error:
            errors.print(f"[red]replay refused:[/red] {error}")
            raise typer.Exit(1) from None
    _print_summary(result.summary)
    data_info = result.summary.get("data")
    if isinstance(data_info, dict) and data_info.get("stopped_early"):
        console.print(f"[yellow]note:[/yellow] {data_info['stopped_early']}", soft_wrap=True)
    if isinstance(data_info, dict) and data_info.get("end_of_data"):
        console.print(f"end of data: {data_info['end_of_data']}", soft_wrap=True)
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


def _both(mae: float, interval: dict[str, float] | None) -> str:
    return f"{mae:.2f}" if interval is None else f"{mae:.2f} / {interval['interval_score']:.1f}"


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _print_summary(summary: dict[str, object]) -> None:
    from btcmlops.contest.rule import PROMOTED, outcome_of

    history = Table(title="Champion history")
    history.add_column("version", justify="right")
    history.add_column("serves from")
    for item in summary["champion_history"]:  # type: ignore[attr-defined]
        history.add_row(f"v{item['version']}", item["from_month"])
    console.print(history)
    decisions = Table(
        title="Contest decisions on the shadow month: MAE / interval score (USDT), one-sided DM p-values"
    )
    for column in ("month", "champion", "challenger", "naive", "p (MAE / interval)", "decision"):
        decisions.add_column(column, justify="right", no_wrap=True)
    for item in summary["decisions"]:  # type: ignore[attr-defined]
        intervals = item.get("intervals", {})
        decisions.add_row(
            item["month"],
            f"v{item['champion_version']} {_both(item['champion_mae'], intervals.get('champion'))}",
            f"v{item['challenger_version']} {_both(item['challenger_mae'], intervals.get('challenger'))}",
            _both(item["naive_mae"], intervals.get("naive")),
            f"{_p(item.get('dm_p_value'))} / {_p(item.get('dm_interval_p_value'))}",
            f"[green]{PROMOTED}[/green]" if item["promoted"] else outcome_of(False),
        )
    console.print(decisions)
    overall = summary["overall"]
    if isinstance(overall, dict):
        console.print(
            f"served MAE {overall['served']['mae']:.2f} USDT vs naive {overall['naive']['mae']:.2f} USDT "
            f"(skill {overall['skill']:+.3%}) over {overall['served']['n']} served hours; "
            f"{summary['promotions']} promotion(s); final champion v{summary['final_champion']}"
        )
        if "served_interval" in overall:
            served, naive = overall["served_interval"], overall["naive_interval"]
            monthly: list[dict[str, float]] = summary.get("monthly", [])  # type: ignore[assignment]
            significant = len([m for m in monthly if m.get("interval_p_value", 1.0) < 0.05])
            console.print(
                f"{served['level']:.0%} interval: coverage {served['coverage']:.1%} (naive "
                f"{naive['coverage']:.1%}), interval score {served['interval_score']:.2f} vs naive "
                f"{naive['interval_score']:.2f} USDT (interval skill {overall['interval_skill']:+.2%}); "
                f"better than naive's at 5 % in {significant} of {len(monthly)} "
                f"months; worst month's coverage {overall['worst_month_coverage']:.1%}"
            )
    timings = summary.get("timings", {})
    if isinstance(timings, dict):
        console.print(
            f"wall {timings.get('total_s', 0):.1f} s: training {timings.get('training_s', 0):.1f} s, "
            f"MLflow {timings.get('mlflow_s', 0):.1f} s"
        )
