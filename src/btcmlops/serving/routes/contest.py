"""The contest, read (``/shadow``, ``/decisions``): the challenger's forecasts and each month's decision.

Reads only: the challenger never serves, and nothing here changes what is served.
"""

from __future__ import annotations

import asyncio
import math
from typing import Annotated, Any

from fastapi import APIRouter, Query

from btcmlops.calendar import Month
from btcmlops.contest.rule import outcome_of
from btcmlops.serving.deps import AppSettings, Service, Store
from btcmlops.serving.errors import ApiError, documented
from btcmlops.serving.live_contest import LiveStanding, NoSuchContestError
from btcmlops.serving.schemas import (
    DecisionPublic,
    IntervalPublic,
    IntervalScoresPublic,
    LiveContestPublic,
    LiveRulePublic,
    ShadowForecastPublic,
    ShadowPublic,
    UtcDatetime,
)
from btcmlops.serving.snapshot import hour_number, hour_time, shadow_forecasts
from btcmlops.settings import ContestSettings

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


@router.get(
    "/contest/live",
    response_model=LiveContestPublic,
    responses=documented(
        404,
        503,
        why={
            404: "No such contest: the month is neither in progress nor decided, "
            "or the shadow challenger is off"
        },
    ),
)
async def live_contest(
    service: Service,
    settings: AppSettings,
    month: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$",
            description="A shadow month (YYYY-MM); default: the one in progress",
            examples=["2024-03"],
        ),
    ] = None,
) -> LiveContestPublic:
    """The shadow month in progress (or a decided one): hours scored and left, each contestant's scores
    so far, both Diebold-Mariano tests and what the contest's rule would decide now."""
    live = service.live_contest
    if live is None:
        raise ApiError(404, "the shadow challenger is off (BTCMLOPS_SERVE__SHADOW_CHALLENGER=false)")
    if month is None:
        standing = live.current
        if standing is None:
            raise ApiError(503, "the live contest has not been judged yet: ask again in a moment")
    else:
        try:
            standing = await asyncio.to_thread(live.of_month, Month.parse(month))
        except NoSuchContestError as error:
            raise ApiError(404, str(error)) from None
    return live_contest_public(standing, settings.contest, service.challenger_error or live.error)


def live_contest_public(live: LiveStanding, rule: ContestSettings, error: str | None) -> LiveContestPublic:
    """The API's view of a standing: the decision's own fields (as ``/decisions`` has them), the rule."""
    standing = live.standing
    fields: dict[str, Any] = {}
    if standing is not None:
        fields = {
            "hours_scored": standing.hours,
            "hours_left": standing.hours_left,
            "hours_in_month": standing.expected_hours,
            "last_target_time": None
            if standing.last_target is None
            else standing.last_target.to_pydatetime(),
            "champion_version": standing.champion_version,
            "challenger_version": standing.challenger_version,
            "tenure": {str(version): hours for version, hours in standing.tenure.items()},
        }
    judgement = None if standing is None else standing.judgement
    if judgement is not None:
        sides = (
            ("champion", judgement.champion, judgement.champion_interval),
            ("challenger", judgement.challenger, judgement.challenger_interval),
            ("naive", judgement.naive, judgement.naive_interval),
        )
        for name, scores, interval in sides:
            fields[f"{name}_mae"] = scores.mae
            fields[f"{name}_interval"] = (
                None if interval is None else IntervalScoresPublic.model_validate(interval.as_dict())
            )
        for key, prefix in (("mae", "dm"), ("interval_score", "dm_interval")):
            test = judgement.tests.get(key)
            if test is not None:  # JSON holds no infinity: a constant differential's statistic is null
                fields[f"{prefix}_statistic"] = test.statistic if math.isfinite(test.statistic) else None
                fields[f"{prefix}_p_value"] = test.p_value
        fields["would_promote"] = judgement.decision.promote
        fields["reason"] = judgement.decision.reason
    month = live.month
    expected = month.hours
    return LiveContestPublic(
        month=str(month),
        state=live.state,
        **{"hours_scored": 0, "hours_left": 0, "hours_in_month": expected, **fields},
        rule=LiveRulePublic(
            metric=rule.metric,
            margin=rule.margin,
            promotion_rule=rule.promotion_rule,
            alpha=rule.alpha,
            require_beat_naive=rule.require_beat_naive,
            min_month_share=rule.min_month_share,
        ),
        note=live.note,
        challenger_error=error,
        computed_at=live.computed_at,
    )
