"""Forecasts: the requests for them, the answers, the challenger's shadow and the prediction log."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    field_validator,
    model_validator,
)

from btcmlops.serving.schemas.validation import (
    EXAMPLE_HOUR,
    FIRST_YEAR,
    LAST_YEAR,
    MAX_CANDLES,
    UtcDatetime,
    UtcHour,
    not_null,
    without_null,
)


class PredictionRequest(BaseModel):
    """Forecast from one hour: name it (the service reads the price store) or send the candles.

    Exactly one of ``timestamp`` and ``candles`` (the schema's ``oneOf``).
    """

    timestamp: UtcHour | None = Field(
        default=None,
        description=(
            "Hour T (open time, on the hour, with a UTC offset) to forecast from; "
            f"a year from {FIRST_YEAR} to {LAST_YEAR}."
        ),
        examples=[EXAMPLE_HOUR],
    )
    candles: list[CandleIn] | None = Field(
        default=None,
        max_length=MAX_CANDLES,
        description=(
            "Consecutive hourly candles, oldest first, ending at hour T: at least a full feature window, "
            f"at most {MAX_CANDLES}; only the last window is used."
        ),
    )

    model_config = ConfigDict(json_schema_extra=lambda schema: _request_schema(schema))

    @field_validator("timestamp", "candles", mode="before")
    @classmethod
    def _sent_means_set(cls, value: object, info: ValidationInfo) -> object:
        return not_null(value, str(info.field_name))

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.timestamp is None) == (self.candles is None):
            raise ValueError("send exactly one of 'timestamp' or 'candles'")
        return self


def _request_schema(schema: dict[str, Any]) -> None:
    without_null(schema)
    schema["oneOf"] = [{"required": ["timestamp"]}, {"required": ["candles"]}]
    schema["examples"] = [{"timestamp": EXAMPLE_HOUR}]


class CandleIn(BaseModel):
    """One hourly candle sent by a client: numbers as JSON numbers (strict: ``true`` is not 1.0).

    Each candle must also be possible (high at least open, close and low; low at most open and close)
    and each one hour after the one before: rules JSON Schema cannot state, answered 422 naming the
    candle and the field.
    """

    open_time: UtcHour = Field(examples=[EXAMPLE_HOUR])
    open: float = Field(strict=True, gt=0, allow_inf_nan=False, examples=[67000.0])
    high: float = Field(strict=True, gt=0, allow_inf_nan=False, examples=[67250.5])
    low: float = Field(strict=True, gt=0, allow_inf_nan=False, examples=[66900.0])
    close: float = Field(strict=True, gt=0, allow_inf_nan=False, examples=[67100.2])
    volume: float = Field(strict=True, ge=0, allow_inf_nan=False, examples=[512.3])


class BatchPredictionRequest(BaseModel):
    """Forecasts from several hours in one request."""

    timestamps: list[UtcDatetime] = Field(
        min_length=1, examples=[["2024-03-05T12:00:00Z", "2024-03-05T13:00:00Z", EXAMPLE_HOUR]]
    )


class ModelRef(BaseModel):
    """Which registered model version made a forecast."""

    name: str = Field(examples=["btc-next-hour-close"])
    version: int = Field(examples=[3])
    run_id: str = Field(examples=["4f1c0b2e6a5d4c3b9a8e7f6d5c4b3a21"])


EXAMPLE_INTERVAL: dict[str, JsonValue] = {"level": 0.8, "lower": 66884.9, "upper": 67352.6}


class IntervalPublic(BaseModel):
    """A central interval of the close at ``target_time``: the close should fall inside it in ``level`` of
    the hours (below ``lower`` in half the rest, above ``upper`` in the other half)."""

    level: float = Field(description="The share of hours the interval is meant to cover.", examples=[0.8])
    lower: float = Field(description="Lower close at ``target_time``, in USDT.", examples=[66884.9])
    upper: float = Field(description="Upper close at ``target_time``, in USDT.", examples=[67352.6])

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_INTERVAL]})


class PredictionPublic(BaseModel):
    """The close forecast for ``target_time`` = ``timestamp`` + 1h with its central interval, and the naive
    forecast beside it."""

    timestamp: datetime = Field(examples=[EXAMPLE_HOUR])
    target_time: datetime = Field(examples=["2024-03-05T15:00:00Z"])
    predicted_close: float = Field(examples=[67123.4])
    last_close: float = Field(
        description="The close at ``timestamp``: the naive forecast.", examples=[67100.2]
    )
    interval: IntervalPublic = Field(
        description=(
            "The serving version's calibrated central interval of the close at ``target_time`` (closes in "
            "USDT): exactly the interval the replay scores for this version and hour."
        ),
        examples=[EXAMPLE_INTERVAL],
    )
    model: ModelRef
    in_sample: bool = Field(
        default=False,
        description=(
            "True when ``target_time`` is inside the model's training window: the model has seen this "
            "outcome, so the answer says nothing about its skill."
        ),
        examples=[False],
    )
    served_live_by: int | None = Field(
        default=None,
        description="For an in-sample answer: the version that forecast this hour live, if one did.",
        examples=[2],
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
    timestamp: datetime = Field(examples=[EXAMPLE_HOUR])
    target_time: datetime = Field(examples=["2024-03-05T15:00:00Z"])
    predicted_close: float = Field(examples=[67123.4])
    interval: IntervalPublic | None = Field(
        description="The challenger's central interval; null for a version registered before intervals.",
        examples=[EXAMPLE_INTERVAL],
    )


class ShadowPublic(BaseModel):
    """The challenger's forecasts in shadow: made beside the champion's, never served, not logged."""

    version: int | None = Field(description="The challenger's version; None when none is in shadow.")
    forecasts: list[ShadowForecastPublic]


class CandlePublic(BaseModel):
    open_time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float


class LoggedPredictionPublic(BaseModel):
    timestamp: datetime = Field(examples=[EXAMPLE_HOUR])
    target_time: datetime = Field(examples=["2024-03-05T15:00:00Z"])
    predicted_close: float = Field(examples=[67123.4])
    last_close: float = Field(examples=[67100.2])
    model_version: int = Field(examples=[3])
    served_at: datetime = Field(
        description="Wall time the service answered (UTC).", examples=["2026-12-06T15:04:05.123456Z"]
    )
    sim_made_at: datetime | None = Field(
        description="Sim time the forecast was made at.", examples=["2024-03-05T14:12:30Z"]
    )
    live: bool = Field(
        description="Made before its target hour closed in sim time, for an hour after the training "
        "window of the version that made it: a forecast a clock reset had asked again for an hour the "
        "version was trained on is never live.",
        examples=[True],
    )
    interval: IntervalPublic | None = Field(
        description="The interval served with the forecast; null for a row logged before intervals.",
        examples=[EXAMPLE_INTERVAL],
    )
    naive_interval: IntervalPublic | None = Field(
        description=(
            "Naive's interval for the same hour and level (the row's level, else the service's "
            "BTCMLOPS_MODEL__INTERVAL_LEVEL), computed from the store's candles: the trailing 720 hours' "
            "quantiles of hourly log returns applied to ``last_close``; null with fewer than 24 such "
            "returns."
        ),
        examples=[{"level": 0.8, "lower": 66790.3, "upper": 67421.8}],
    )


PredictionRequest.model_rebuild()  # CandleIn is defined after it
