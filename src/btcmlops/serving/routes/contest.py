"""The contest, read (``/shadow``, ``/decisions``): the challenger's forecasts and each month's decision.

Reads only: the challenger never serves, and nothing here changes what is served.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query

from btcmlops.contest.rule import outcome_of
from btcmlops.serving.deps import Service, Store
from btcmlops.serving.errors import documented
from btcmlops.serving.schemas import (
    DecisionPublic,
    IntervalPublic,
    ShadowForecastPublic,
    ShadowPublic,
    UtcDatetime,
)
from btcmlops.serving.snapshot import hour_number, hour_time, shadow_forecasts

router = APIRouter(tags=["read"])


@router.get("/shadow", response_model=ShadowPublic)
def shadow(
    service: Service,
    start: Annotated[UtcDatetime, Query(description="First hour T", examples=["2024-03-01T00:00:00Z"])],
    end: Annotated[UtcDatetime, Query(description="Last hour T", examples=["2024-03-07T23:00:00Z"])],
) -> ShadowPublic:
    """The challenger's forecasts from the hours in [start, end] it was not trained on."""
    challenger = service.challenger
    if challenger is None:
        return ShadowPublic(version=None, forecasts=[])
    hours, forecasts = shadow_forecasts(service.snapshot, challenger, hour_number(start), hour_number(end))
    level = challenger.forecaster.interval_level
    return ShadowPublic(
        version=challenger.info.version,
        forecasts=[
            ShadowForecastPublic(
                timestamp=hour_time(int(hour)),
                target_time=hour_time(int(hour) + 1),
                predicted_close=float(value),
                interval=None if level is None else IntervalPublic(level=level, lower=lower, upper=upper),
            )
            for hour, value, lower, upper in zip(hours, *forecasts, strict=True)
        ],
    )


def _decision_fields(metrics: dict[str, Any]) -> dict[str, Any]:
    """The interval scores, both Diebold-Mariano tests and the rule's metric, out of a decision row's
    ``metrics`` JSON; None for what a row does not hold (decided before intervals, or no test run)."""
    intervals = metrics.get("intervals") or {}
    fields: dict[str, Any] = {
        f"{name}_interval": intervals.get(name) for name in ("champion", "challenger", "naive")
    }
    for key, prefix in (("significance", "dm"), ("interval_significance", "dm_interval")):
        test = metrics.get(key) or {}
        for part in ("statistic", "p_value"):
            value = test.get(part)
            fields[f"{prefix}_{part}"] = value if isinstance(value, int | float) else None
    fields["metric"] = metrics.get("metric")
    return fields


@router.get("/decisions", response_model=list[DecisionPublic], responses=documented(503))
async def decisions(service: Service, store: Store) -> list[DecisionPublic]:
    """Every contest decision of this registered model, oldest first, with its MLflow run."""
    model_name = service.registry.model_name
    rows = await service.store_call(lambda: store.list_decisions(model_name))
    months = {f"{row.eval_start:%Y-%m}" for row in rows}
    experiment_id, runs = await asyncio.to_thread(service.contest_runs, months)  # MLflow: its own timeout
    return [
        DecisionPublic(
            **vars(row),
            **_decision_fields(row.metrics),
            outcome=outcome_of(row.promoted),
            experiment_id=experiment_id,
            run_id=runs.get(f"{row.eval_start:%Y-%m}"),
        )
        for row in rows
    ]
