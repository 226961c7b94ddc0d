"""``btcmlops registry``: check the registry's invariants, or finish a change cut off half-way."""

from __future__ import annotations

import typer

from btcmlops.cli.common import (
    ReplayOption,
    existing_store_only,
    no_blind_mlflow_retries,
    on_replay,
    settings_of,
)
from btcmlops.cli.console import console, errors

registry_app = typer.Typer(help="Check the registry's invariants, or finish a change cut off half-way.")


@registry_app.command("check")
def registry_check(ctx: typer.Context, replay: ReplayOption = None) -> None:
    """Print every broken invariant (exit 1), or that the registry is sound."""
    from btcmlops.bootstrap import contest_by_hand

    no_blind_mlflow_retries(ctx, timeout_s=60)
    with existing_store_only(ctx), contest_by_hand(on_replay(settings_of(ctx), replay)) as contest:
        problems = contest.changes.problems()
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
    from btcmlops.bootstrap import contest_by_hand

    no_blind_mlflow_retries(ctx, timeout_s=60)
    with existing_store_only(ctx), contest_by_hand(on_replay(settings_of(ctx), replay)) as contest:
        finished = contest.reconcile(grace_s=0.0)  # by hand: whatever is pending is finished now
        problems = contest.changes.problems()
    for outcome in finished:
        console.print(f"finished the close of {outcome.month}")
    for problem in problems:
        errors.print(f"[red]✗[/red] {problem}", soft_wrap=True)
    if problems:
        raise typer.Exit(1)
    console.print("[green]✓[/green] reconciled; registry sound")
