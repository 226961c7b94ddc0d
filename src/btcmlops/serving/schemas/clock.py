"""The sim clock as the API shows it, and the changes a presenter or the feed sends."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from btcmlops.serving.schemas.validation import UtcDatetime, UtcHour, not_null, without_null
from btcmlops.speed import MAX_SPEED


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
    speed: float = Field(description="Sim hours per real second, as set.", examples=[12.0])
    achieved_speed: float | None = Field(
        default=None,
        description=(
            "Sim hours per real second the clock really ran over about the last 10 s of real time, as this "
            "service read it (on every read of the clock and every forecast it made): less than speed "
            "while the clock waits for a contest or a forecast; null until 1 s has been observed."
        ),
        examples=[46.8],
    )
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


class HourClosed(BaseModel):
    """The feed's notice: it wrote the candle of ``hour`` (and every one before it)."""

    hour: UtcHour = Field(examples=["2024-03-05T13:00:00Z"])


class ClockChange(BaseModel):
    """Change the clock: set its speed, pause, resume, or reset it to the configured start."""

    action: Literal["speed", "pause", "resume", "reset"] = Field(examples=["speed"])
    speed: float | None = Field(
        default=None,
        strict=True,  # a number, not true (lax mode would read it as 1.0)
        gt=0,
        le=MAX_SPEED,
        allow_inf_nan=False,
        description=(
            "Sim hours per real second: required by 'speed', optional for 'reset'; finite, at most the "
            f"service's BTCMLOPS_CLOCK__MAX_SPEED (never above {MAX_SPEED:g})."
        ),
    )
    start: UtcDatetime | None = Field(
        default=None,
        description="For 'reset': the sim time to start from (default: the configured start).",
        examples=["2024-01-01T00:00:00Z"],
    )

    model_config = ConfigDict(json_schema_extra=lambda schema: _clock_change_schema(schema))

    @field_validator("speed", "start", mode="before")
    @classmethod
    def _sent_means_set(cls, value: object, info: ValidationInfo) -> object:
        return not_null(value, str(info.field_name))

    @model_validator(mode="after")
    def _speed_has_a_speed(self) -> Self:
        if self.action == "speed" and self.speed is None:
            raise ValueError("action 'speed' needs a 'speed'")
        return self


def _clock_change_schema(schema: dict[str, Any]) -> None:
    without_null(schema)
    schema["if"] = {"properties": {"action": {"const": "speed"}}}
    schema["then"] = {"required": ["speed"]}
