"""The model served, the contests that chose it, and changes of champion by hand."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
)

from btcmlops.serving.schemas.validation import json_integer


class TrainingWindowPublic(BaseModel):
    train_start: datetime
    train_end: datetime
    train_rows: int
    data_hash: str
    trained_through: str


class ModelInfoPublic(BaseModel):
    """What is being served, and how the service's view of the registry stands."""

    name: str
    version: int | None = Field(description="None until a champion has loaded.")
    run_id: str | None
    feature_set: str
    training_window: TrainingWindowPublic | None
    loaded_at: datetime | None
    last_registry_check: datetime | None
    last_swap_error: str | None = Field(
        description=(
            "The champion watcher's current error (registry unreachable, a version refused); null once a "
            "check succeeds."
        )
    )
    store_error: str | None = Field(
        default=None,
        description="The price store's current error (refused, timed out); null once the store answers.",
    )
    last_store_answer: datetime | None = Field(
        default=None, description="When the store watcher's last round succeeded."
    )
    candles_in_memory: int
    latest_candle: datetime | None


EXAMPLE_SCORES: dict[str, JsonValue] = {
    "n": 744,
    "level": 0.8,
    "coverage": 0.79,
    "mean_width": 702.4,
    "interval_score": 1011.7,
    "pinball": 50.6,
}


class IntervalScoresPublic(BaseModel):
    """How one contestant's interval did on the shadow month (coverage a fraction, the rest in USDT)."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_SCORES]})

    n: int = Field(description="Hours scored.", examples=[744])
    level: float = Field(examples=[0.8])
    coverage: float = Field(description="Share of hours whose close fell inside.", examples=[0.79])
    mean_width: float = Field(description="Mean of upper - lower.", examples=[702.4])
    interval_score: float = Field(
        description="Mean Gneiting-Raftery (Winkler) interval score: width plus the misses' penalty.",
        examples=[1011.7],
    )
    pinball: float = Field(
        description="Mean of the two tails' pinball losses: (1 - level) / 4 times the interval score.",
        examples=[50.6],
    )


class DecisionPublic(BaseModel):
    """One month's contest: the shadow month's scores, the tests, and what the rule decided."""

    eval_start: datetime = Field(
        description="The shadow month's first target hour.", examples=["2024-04-01T00:00:00Z"]
    )
    eval_end: datetime = Field(
        description="The shadow month's last target hour.", examples=["2024-04-30T23:00:00Z"]
    )
    champion_version: int = Field(
        description="The version that served the month (its champion).", examples=[3]
    )
    challenger_version: int = Field(description="The version scored in shadow beside it.", examples=[4])
    champion_mae: float = Field(description="MAE of what served each hour, USDT.", examples=[241.7])
    challenger_mae: float = Field(
        description="The challenger's MAE on the same hours, USDT.", examples=[238.9]
    )
    naive_mae: float = Field(description="Naive's MAE (next close = last close), USDT.", examples=[244.1])
    metrics: dict[str, Any] = Field(
        description=(
            "Everything the contest recorded: the three scores with RMSE, MAPE and direction, intervals, "
            "both significance tests, the metric and the rule's margin."
        ),
        examples=[{"metric": "mae", "margin": 0.0, "significance": {"statistic": -1.42, "p_value": 0.078}}],
    )
    champion_interval: IntervalScoresPublic | None = Field(
        default=None,
        description="The champion's interval scores (null: a decision made before intervals).",
        examples=[EXAMPLE_SCORES],
    )
    challenger_interval: IntervalScoresPublic | None = Field(
        default=None,
        description="The challenger's interval scores (null: it has no interval).",
        examples=[{**EXAMPLE_SCORES, "coverage": 0.81, "interval_score": 987.2, "pinball": 49.4}],
    )
    naive_interval: IntervalScoresPublic | None = Field(
        default=None,
        description="Naive's interval scores at the champion's level (null: none).",
        examples=[{**EXAMPLE_SCORES, "coverage": 0.77, "interval_score": 1092.5, "pinball": 54.6}],
    )
    dm_statistic: float | None = Field(
        default=None,
        description="Diebold-Mariano statistic of the absolute errors (negative: the challenger's lower).",
        examples=[-1.42],
    )
    dm_p_value: float | None = Field(
        default=None,
        description="One-sided p-value of that test (the challenger's MAE is lower); null: no test recorded.",
        examples=[0.078],
    )
    dm_interval_statistic: float | None = Field(
        default=None, description="Diebold-Mariano statistic of the hourly interval scores.", examples=[-2.9]
    )
    dm_interval_p_value: float | None = Field(
        default=None,
        description="One-sided p-value of that test (the challenger's interval score is lower); null: none.",
        examples=[0.0019],
    )
    metric: Literal["mae", "interval_score"] | None = Field(
        default=None,
        description="The score the rule (margin, significance) was applied to; null: a decision before it.",
        examples=["mae"],
    )
    promoted: bool = Field(description="True when the challenger became the champion.", examples=[False])
    outcome: Literal["promoted", "archived"] = Field(
        description="The outcome in the words every surface uses: the challenger promoted or archived.",
        examples=["archived"],
    )
    reason: str = Field(
        description="Why, in the rule's words.",
        examples=[
            (
                "challenger does not beat the champion: challenger mae 238.90 vs champion 241.70 "
                "(-1.16%, margin 2.00%), naive 244.10"
            )
        ],
    )
    decided_at: datetime = Field(
        description="Wall time of the decision (UTC).", examples=["2026-12-06T15:04:05Z"]
    )
    experiment_id: str | None = Field(
        default=None, description="MLflow experiment of the contest run.", examples=["1"]
    )
    run_id: str | None = Field(
        default=None,
        description="The MLflow run that records this contest (None: MLflow not reachable).",
        examples=["9b2e4c1d0f3a4e5b8c7d6e5f4a3b2c1d"],
    )


class PromotionRequest(BaseModel):
    """Make a version the champion by hand; the reason goes into the audit."""

    version: Annotated[int, BeforeValidator(json_integer)] = Field(ge=1, le=2**31 - 1, examples=[3])
    reason: str = Field(min_length=1, max_length=2000, examples=["the new challenger looks better live"])


class RollbackRequest(BaseModel):
    """Put the previous champion back; the reason goes into the audit."""

    reason: str = Field(min_length=1, max_length=2000, examples=["v4 drifts since the halving"])


class ChampionChangePublic(BaseModel):
    """One change of champion from the append-only audit."""

    id: int | None
    changed_at: datetime = Field(description="Real time of the change.")
    sim_time: datetime | None = Field(description="Sim time from which the new champion serves.")
    actor: str
    from_version: int | None
    to_version: int
    reason: str
    source: Literal["contest", "manual", "external"]
