"""Monitoring: live scores, alerts relayed from Prometheus, drift, and the live contest."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
)

from btcmlops.serving.schemas.model import EXAMPLE_SCORES, IntervalScoresPublic


class LiveWindowScoresPublic(BaseModel):
    """One version's live record in one role over the last 7 sim days (the window gauges of /metrics).

    The means are over the hours scored (forecast in time, after the version's training window, the
    close known); null when there is none. Skills are 1 - score / naive's score: above 0, better than
    naive on the same hours."""

    model_version: int = Field(examples=[3])
    role: str = Field(
        description="champion: the forecasts served; challenger: its forecasts in shadow.",
        examples=["champion"],
    )
    scored_hours: int = Field(description="Hours scored in the window.", examples=[168])
    mean_absolute_error_usdt: float | None = Field(examples=[231.4])
    naive_mean_absolute_error_usdt: float | None = Field(examples=[233.9])
    skill: float | None = Field(description="1 - MAE / naive's MAE.", examples=[0.0107])
    coverage: float | None = Field(description="Share of hours inside the interval.", examples=[0.81])
    interval_score_usdt: float | None = Field(examples=[1003.2])
    naive_interval_score_usdt: float | None = Field(examples=[1081.6])
    interval_skill: float | None = Field(
        description="1 - interval score / naive's interval score.", examples=[0.0725]
    )


class LiveScoresPublic(BaseModel):
    """Every version's live record over the last 7 sim days, and the level its coverage is meant to meet."""

    window: Literal["7d"] = Field(examples=["7d"])
    window_end: datetime | None = Field(
        description="Sim now (the newest candle's close without a clock); null before any candle.",
        examples=["2024-03-05T15:00:00Z"],
    )
    interval_level: float | None = Field(
        description="The serving champion's interval level (null: no model loaded).", examples=[0.8]
    )
    scores: list[LiveWindowScoresPublic]


class AlertPublic(BaseModel):
    """An alert Prometheus has pending (its condition holds, not yet for its ``for:``) or firing."""

    name: str = Field(examples=["ChampionWorseThanNaive"])
    state: Literal["pending", "firing"] = Field(examples=["firing"])
    severity: str | None = Field(examples=["warning"])
    summary: str | None = Field(examples=["v3's 7-day MAE is above naive's"])
    labels: dict[str, str] = Field(examples=[{"model_version": "3", "role": "champion"}])
    active_at: datetime | None = Field(
        description="Wall time the condition began to hold.", examples=["2026-12-06T15:04:05Z"]
    )
    value: float | None = Field(
        description="The rule expression's value when last evaluated.", examples=[1.02]
    )


class AlertsPublic(BaseModel):
    """What Prometheus says is wrong now, relayed for the dashboard (which talks to this API only)."""

    configured: bool = Field(
        description="False: BTCMLOPS_SERVE__PROMETHEUS_URL is unset, so no alert can be known here.",
        examples=[True],
    )
    source: str | None = Field(
        description="The Prometheus server asked (its URL without any credentials).",
        examples=["http://prometheus:9090"],
    )
    alerts: list[AlertPublic]


class DriftWindowPublic(BaseModel):
    """A window of hours T (candle open times) whose features are compared."""

    start: datetime = Field(description="First hour T in the window.", examples=["2024-02-29T01:00:00Z"])
    end: datetime = Field(description="Last hour T in the window.", examples=["2024-03-07T00:00:00Z"])
    hours: int = Field(description="Hours with complete features in it.", examples=[168])


class FeatureDriftPublic(BaseModel):
    """One feature's drift: its PSI and what it reads as."""

    feature: str = Field(examples=["vol_24"])
    psi: float = Field(description="Population Stability Index against the reference.", examples=[0.31])
    status: Literal["stable", "moderate", "drifted"] = Field(
        description="stable: PSI < 0.1; moderate: 0.1 to the threshold; drifted: above the threshold.",
        examples=["drifted"],
    )


EXAMPLE_DRIFT: dict[str, Any] = {
    "model_version": 3,
    "window": "7d",
    "threshold": 0.25,
    "moderate_threshold": 0.1,
    "status": "drifted",
    "reference": {"start": "2023-01-01T00:00:00Z", "end": "2024-01-31T22:00:00Z", "hours": 9455},
    "current": {"start": "2024-02-29T01:00:00Z", "end": "2024-03-07T00:00:00Z", "hours": 168},
    "features": [
        {"feature": "ret_1", "psi": 0.04, "status": "stable"},
        {"feature": "vol_24", "psi": 0.31, "status": "drifted"},
    ],
}


class DriftPublic(BaseModel):
    """Each model feature of the last 7 sim days against the serving champion's training window."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_DRIFT]})

    model_version: int | None = Field(
        description="The champion whose training window is the reference (null: no model yet)."
    )
    window: str = Field(description="The current window's length in sim time.", examples=["7d"])
    threshold: float = Field(
        description="PSI above which a feature is drifted (BTCMLOPS_SERVE__DRIFT_PSI_THRESHOLD).",
        examples=[0.25],
    )
    moderate_threshold: float = Field(
        description="PSI at or above which a feature is moderate.", examples=[0.1]
    )
    status: Literal["stable", "moderate", "drifted"] | None = Field(
        description="The worst feature's status (null: no PSI yet).", examples=["drifted"]
    )
    reference: DriftWindowPublic | None = Field(
        description="The hours the champion was trained on (hour T's features, target T + 1 h in its window)."
    )
    current: DriftWindowPublic | None = Field(
        description="The hours whose candle closed in the last 7 sim days."
    )
    features: list[FeatureDriftPublic] = Field(
        description="Per feature, in the feature set's order; empty while the current window has under "
        "24 hours (too few for deciles) or there is no reference."
    )


class LiveRulePublic(BaseModel):
    """The contest's rule, as the trainer will apply it at the month's end (``BTCMLOPS_CONTEST__*``)."""

    metric: Literal["mae", "interval_score"] = Field(description="The score the rule is applied to.")
    margin: float = Field(description="How much lower the challenger's score must be (a fraction).")
    promotion_rule: Literal["margin", "significance"] = Field(
        description="margin; or significance: the margin and p < alpha on the metric's test."
    )
    alpha: float
    require_beat_naive: bool
    min_month_share: float = Field(description="Fewest of the month's hours a contest is decided on.")


_LIVE_EXAMPLE: dict[str, JsonValue] = {
    "month": "2024-03",
    "state": "in progress",
    "hours_scored": 412,
    "hours_left": 332,
    "hours_in_month": 744,
    "last_target_time": "2024-03-18T03:00:00Z",
    "champion_version": 2,
    "challenger_version": 3,
    "tenure": {"2": 412},
    "champion_mae": 301.52,
    "challenger_mae": 296.08,
    "naive_mae": 303.9,
    "champion_interval": EXAMPLE_SCORES,
    "challenger_interval": {**EXAMPLE_SCORES, "coverage": 0.81, "interval_score": 987.2, "pinball": 49.4},
    "naive_interval": {**EXAMPLE_SCORES, "coverage": 0.77, "interval_score": 1092.5, "pinball": 54.6},
    "dm_statistic": -1.42,
    "dm_p_value": 0.078,
    "dm_interval_statistic": -2.9,
    "dm_interval_p_value": 0.0019,
    "rule": {
        "metric": "mae",
        "margin": 0.0,
        "promotion_rule": "margin",
        "alpha": 0.05,
        "require_beat_naive": False,
        "min_month_share": 0.75,
    },
    "would_promote": True,
    "reason": "challenger wins: challenger MAE 296.08 vs champion 301.52 (-1.80%, margin 0.00%), naive "
    "303.90; DM -1.42, p 0.078 (HAC, 6 lags)",
    "note": None,
    "challenger_error": None,
    "computed_at": "2024-03-18T04:00:01Z",
}


class LiveContestPublic(BaseModel):
    """The shadow month's contest as it stands: the same figures the decision will record at its end."""

    model_config = ConfigDict(json_schema_extra={"examples": [_LIVE_EXAMPLE]})

    month: str = Field(description="The shadow month (YYYY-MM).", examples=["2024-03"])
    state: Literal["in progress", "closing", "decided"] = Field(
        description="in progress: hours left; closing: every hour closed, the trainer has not decided yet; "
        "decided: a month the trainer decided, judged again from the store."
    )
    hours_scored: int = Field(description="Hours of the month scored so far (a missing candle: none).")
    hours_left: int = Field(description="Target hours of the month not closed yet in sim time.")
    hours_in_month: int
    last_target_time: datetime | None = Field(default=None, description="The newest target hour scored.")
    champion_version: int | None = Field(
        default=None, description="The champion at the month's close (an hour no audited change covers)."
    )
    challenger_version: int | None = None
    tenure: dict[str, int] = Field(
        default_factory=dict, description="Hours each version served on the champion's side, in order."
    )
    champion_mae: float | None = Field(default=None, description="MAE of what served each hour, USDT.")
    challenger_mae: float | None = None
    naive_mae: float | None = None
    champion_interval: IntervalScoresPublic | None = None
    challenger_interval: IntervalScoresPublic | None = None
    naive_interval: IntervalScoresPublic | None = None
    dm_statistic: float | None = Field(
        default=None, description="Diebold-Mariano statistic of the absolute errors so far (null: infinite)."
    )
    dm_p_value: float | None = Field(default=None, description="One-sided p-value of that test so far.")
    dm_interval_statistic: float | None = None
    dm_interval_p_value: float | None = None
    rule: LiveRulePublic
    would_promote: bool | None = Field(
        default=None, description="Whether the rule would promote the challenger on the hours so far."
    )
    reason: str | None = Field(default=None, description="The reason the contest would give now.")
    note: str | None = Field(default=None, description="Why there are no figures yet.")
    challenger_error: str | None = Field(
        default=None, description="Why the challenger failed to load or forecast (it never serves)."
    )
    computed_at: datetime
