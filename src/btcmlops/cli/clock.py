"""``btcmlops clock``: show or change the shared sim clock (kept in the price store)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from btcmlops.cli.common import existing_store_only, settings_of
from btcmlops.cli.console import console, errors
from btcmlops.clock import SimClock, check_speed, last_closed_hour, reset_clock
from btcmlops.settings import Settings

clock_app = typer.Typer(
    help="Show or change the shared sim clock (kept in the price store).", no_args_is_help=True
)


def _show_clock(clock: SimClock | None) -> None:
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
    from btcmlops.bootstrap import open_price_store

    with existing_store_only(ctx), open_price_store(settings_of(ctx), must_exist=True) as store:
        _show_clock(store.read_clock())


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
    from btcmlops.bootstrap import open_price_store

    settings = settings_of(ctx)
    _refuse_bad_speed(speed, settings)
    with open_price_store(settings) as store:
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


@clock_app.command("set")
def clock_set(
    ctx: typer.Context,
    speed: Annotated[float | None, typer.Option(help="New speed, sim hours per real second.")] = None,
    pause: Annotated[bool | None, typer.Option("--pause/--resume", help="Pause or resume.")] = None,
) -> None:
    """Change the speed, or pause or resume, without moving sim time."""
    from btcmlops.bootstrap import open_price_store

    settings = settings_of(ctx)
    _refuse_bad_speed(speed, settings)
    with existing_store_only(ctx), open_price_store(settings, must_exist=True) as store:
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


def _refuse_bad_speed(speed: float | None, settings: Settings) -> None:
    """Exit with the reason before anything is written if ``speed`` is no speed a clock may run at."""
    if speed is None:
        return
    try:
        check_speed(speed, settings.clock.max_speed)
    except ValueError as error:
        errors.print(f"--speed: {error}")
        raise typer.Exit(2) from None
