"""``btcmlops model``: promote, roll back and list champions (journal first, every change audited)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from btcmlops.cli.common import (
    ReplayOption,
    existing_store_only,
    no_blind_mlflow_retries,
    on_replay,
    settings_of,
)
from btcmlops.cli.console import console, errors
from btcmlops.settings import Settings

if TYPE_CHECKING:
    from btcmlops.contest.changes import ChampionChanges
    from btcmlops.store import AuditEntry

model_app = typer.Typer(
    help="Promote, roll back and list champions (journal first, every change in the audit).",
    no_args_is_help=True,
)


def _change_champion(
    ctx: typer.Context, settings: Settings, change: Callable[[ChampionChanges, str], AuditEntry]
) -> None:
    """Make one champion change through the state machine, as the OS user; print it or why not."""
    from btcmlops.bootstrap import contest_by_hand
    from btcmlops.contest.changes import ChangeRefusedError, os_actor
    from btcmlops.store import ChangeInProgressError

    no_blind_mlflow_retries(ctx, timeout_s=60)
    try:
        with existing_store_only(ctx), contest_by_hand(settings) as contest:
            _print_change(change(contest.changes, os_actor()))
    except (ChangeRefusedError, ChangeInProgressError) as error:
        errors.print(f"[red]refused:[/red] {error}")
        raise typer.Exit(1) from None


def _by_whom(row: AuditEntry) -> str:
    """How a change came: "contest" (not "contest by contest"), or "manual by alice@laptop"."""
    return row.source if row.actor == row.source else f"{row.source} by {row.actor}"


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
        ctx,
        on_replay(settings_of(ctx), replay),
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
        ctx,
        on_replay(settings_of(ctx), replay),
        lambda changes, actor: changes.rollback(reason=reason, actor=actor),
    )


@model_app.command("history")
def model_history(ctx: typer.Context, replay: ReplayOption = None) -> None:
    """List every change of champion: when (real and sim time), who, from, to, why, by what."""
    from btcmlops.bootstrap import contest_by_hand

    no_blind_mlflow_retries(ctx, timeout_s=60)
    with existing_store_only(ctx), contest_by_hand(on_replay(settings_of(ctx), replay)) as contest:
        contest.changes.sync_with_registry()
        rows = contest.changes.history()
    if not rows:
        console.print("no champion yet")
    for row in rows:  # one line each, so a reason stays whole and greppable
        sim = f"sim {row.sim_time:%Y-%m-%d %H:%M}Z" if row.sim_time else "sim -"
        was = f"v{row.from_version}" if row.from_version is not None else "-"
        console.print(
            f"#{row.id}  {row.changed_at:%Y-%m-%d %H:%M:%S}Z  {sim}  {was} -> "
            f"[bold]v{row.to_version}[/bold]  {_by_whom(row)}: {row.reason}",
            soft_wrap=True,
            highlight=False,
        )
