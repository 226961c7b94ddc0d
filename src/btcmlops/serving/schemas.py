"""The API's request and response bodies, named by role, with the examples OpenAPI shows."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field

EXAMPLE_HOUR = "2024-03-05T14:00:00Z"


class PredictionRequest(BaseModel):
    """Forecast from one hour: name it (the service reads the price store) or send the candles."""

    timestamp: AwareDatetime | None = Field(
        default=None,
        description="Hour T (open time, UTC, on the hour) to forecast from.",
        examples=[EXAMPLE_HOUR],
    )
    candles: list[CandleIn] | None = Field(
        default=None,
        description="Consecutive hourly candles, oldest first, ending at hour T (a full feature window).",
    )

    model_config = {
        "json_schema_extra": {"examples": [{"timestamp": EXAMPLE_HOUR}]},
    }


class CandleIn(BaseModel):
    """One hourly candle sent by a client."""

    open_time: AwareDatetime = Field(examples=[EXAMPLE_HOUR])
    open: float = Field(examples=[67000.0])
    high: float = Field(examples=[67250.5])
    low: float = Field(examples=[66900.0])
    close: float = Field(examples=[67100.2])
    volume: float = Field(examples=[512.3])


class BatchPredictionRequest(BaseModel):
    """Forecasts from several hours in one request."""

    timestamps: list[AwareDatetime] = Field(
        min_length=1, examples=[["2024-03-05T12:00:00Z", "2024-03-05T13:00:00Z", EXAMPLE_HOUR]]
    )


class ModelRef(BaseModel):
    """Which registered model version made a forecast."""

    name: str = Field(examples=["btc-next-hour-close"])
    version: int = Field(examples=[3])
    run_id: str = Field(examples=["4f1c0b2e6a5d4c3b9a8e7f6d5c4b3a21"])


class PredictionPublic(BaseModel):
    """The close forecast for ``target_time`` = ``timestamp`` + 1h, and the naive one beside it."""

    timestamp: datetime = Field(examples=[EXAMPLE_HOUR])
    target_time: datetime = Field(examples=["2024-03-05T15:00:00Z"])
    predicted_close: float = Field(examples=[67123.4])
    last_close: float = Field(
        description="The close at ``timestamp``: the naive forecast.", examples=[67100.2]
    )
    model: ModelRef
    in_sample: bool = Field(
        default=False,
        description=(
            "True when ``target_time`` is inside the model's training window: the model has seen this "
            "outcome, so the answer says nothing about its skill."
        ),
    )
    served_live_by: int | None = Field(
        default=None,
        description="For an in-sample answer: the version that forecast this hour live, if one did.",
    )


class BatchItemError(BaseModel):
    index: int
    timestamp: datetime
    status: int = Field(examples=[404])
    detail: str


class BatchPredictionPublic(BaseModel):
    """One forecast per answerable hour, and why each other hour has none."""

    predictions: list[PredictionPublic]
    errors: list[BatchItemError]


class ShadowForecastPublic(BaseModel):
    timestamp: datetime
    target_time: datetime
    predicted_close: float


class ShadowPublic(BaseModel):
    """The challenger's forecasts in shadow: made beside the champion's, never served, not logged."""

    version: int | None = Field(description="The challenger's version; None when none is in shadow.")
    forecasts: list[ShadowForecastPublic]


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
    last_swap_error: str | None
    candles_in_memory: int
    latest_candle: datetime | None


class CandlePublic(BaseModel):
    open_time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float


class LoggedPredictionPublic(BaseModel):
    timestamp: datetime
    target_time: datetime
    predicted_close: float
    last_close: float
    model_version: int
    served_at: datetime
    sim_made_at: datetime | None = Field(description="Sim time the forecast was made at.")
    live: bool = Field(description="Made before its target hour closed in sim time.")


class DecisionPublic(BaseModel):
    eval_start: datetime
    eval_end: datetime
    champion_version: int
    challenger_version: int
    champion_mae: float
    challenger_mae: float
    naive_mae: float
    metrics: dict[str, Any]
    promoted: bool
    reason: str
    decided_at: datetime
    experiment_id: str | None = Field(default=None, description="MLflow experiment of the contest run.")
    run_id: str | None = Field(
        default=None, description="The MLflow run that records this contest (None: MLflow not reachable)."
    )


class PromotionRequest(BaseModel):
    """Make a version the champion by hand; the reason goes into the audit."""

    version: int = Field(ge=1, examples=[3])
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


class ClockPublic(BaseModel):
    """The shared sim clock: what time it is in the replayed market."""

    sim_now: datetime = Field(examples=["2024-03-05T14:37:12Z"])
    last_closed_hour: datetime = Field(
        description="Open time of the newest candle that has closed: the latest hour one may forecast from.",
        examples=["2024-03-05T13:00:00Z"],
    )
    last_forecastable_hour: datetime = Field(
        description=(
            "The latest hour one may forecast from: the last closed hour, except while the clock holds at "
            "a month's end (that forecast belongs to the champion the month's contest decides)."
        )
    )
    speed: float = Field(description="Sim hours per real second.", examples=[12.0])
    paused: bool
    state: Literal["running", "paused", "holding", "finished"] = Field(
        description=(
            "holding: at a month's end until the month's contest is closed and served, or (paced) until "
            "the forecast from forecast_due is made; "
            "finished: at the end of the data."
        )
    )
    holding_for: str | None = Field(description="What the clock waits for, while it holds.")
    hold_at: datetime | None = Field(description="Sim time the clock may not pass yet.")
    forecast_due: datetime | None = Field(
        default=None,
        description=(
            "A paced clock's oldest hour without its forecast: sim time stays short of the close of the "
            "hour that forecast is for, so every forecast is made live."
        ),
    )
    end_at: datetime | None = Field(description="The close of the data's last hour: the replay ends there.")


class ClockChange(BaseModel):
    """Change the clock: set its speed, pause, resume, or reset it to the configured start."""

    action: Literal["speed", "pause", "resume", "reset"] = Field(examples=["speed"])
    speed: float | None = Field(default=None, gt=0, description="For 'speed' (and optionally 'reset').")
    start: AwareDatetime | None = Field(
        default=None,
        description="For 'reset': the sim time to start from (default: the configured start).",
        examples=["2024-01-01T00:00:00Z"],
    )


PredictionRequest.model_rebuild()
