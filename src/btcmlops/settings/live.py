"""The live stack's other processes: the sim clock, the feed, the trainer, the client, the dashboard."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    Field,
    model_validator,
)

from btcmlops.speed import MAX_SPEED


class ClockSettings(BaseModel):
    """The shared sim clock of the live stack."""

    start: AwareDatetime = Field(
        default=datetime(2023, 12, 31, tzinfo=UTC),
        description=(
            "Sim time a reset starts from, and the feed's start when no clock exists yet (v1 is trained "
            "once sim time passes its first year)."
        ),
    )
    speed: float = Field(
        default=12.0, gt=0, allow_inf_nan=False, description="Sim hours per real second after a reset."
    )
    max_speed: float = Field(
        default=MAX_SPEED,
        gt=0,
        le=MAX_SPEED,
        description=(
            "Fastest speed a clock change may set, checked before anything is saved (the API answers 422 "
            "above it; never above 10000)."
        ),
    )
    wait_for_service: bool = Field(
        default=True,
        description=(
            "Hold the clock at a month's end until the inference service serves the champion that "
            "month's close decided (off: only until the trainer has closed it)."
        ),
    )
    paced: bool = Field(
        default=True,
        description=(
            "After a reset, also hold the clock until the forecast from each closed hour is made (the "
            "stack's hourly client asks it), so every hour has a live forecast at any speed; off: the clock "
            "runs on whether anyone asks or not."
        ),
    )

    @model_validator(mode="after")
    def _speed_within_max(self) -> Self:
        if self.speed > self.max_speed:
            raise ValueError(f"speed {self.speed:g} is above max_speed {self.max_speed:g}")
        return self


class FeedSettings(BaseModel):
    """The feed (`btcmlops feed`): plays the candle file into the store as the hours close."""

    notify_url: str | None = Field(
        default=None,
        description=(
            "Base URL of the inference service the feed tells of each candle it writes (POST "
            "/clock/hour-closed with the control key, BTCMLOPS_SERVE__CONTROL_KEY), so the service reads it "
            "at once and the client's waiting ask is answered: the hour is pushed, not polled. Unset, or "
            "a notice lost: the service still reads new candles every poll interval and when asked."
        ),
    )


class TrainerSettings(BaseModel):
    """The live trainer: how often it looks at the clock, and its lease (one trainer at a time)."""

    interval_s: float = Field(default=1.0, gt=0, description="Seconds between two looks at the clock.")
    lease_ttl_s: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Seconds a trainer's lease lasts unless renewed (it renews every third of it); a dead "
            "trainer's lease expires after this and the next trainer takes over and reconciles."
        ),
    )
    retry_max_s: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Longest wait before retrying after MLflow or the store failed (the feed's and init's too); "
            "only a configuration error (bad URL, missing driver, refused credentials) ends the feed or "
            "the trainer."
        ),
    )


class ClientSettings(BaseModel):
    """The hourly client (`btcmlops client`): asks the service for the forecast from every hour."""

    api_url: str = Field(
        default="http://127.0.0.1:8000",
        description=(
            "Base URL of the inference service; its port must be BTCMLOPS_SERVE__PORT's (a client that "
            "asks nobody stalls the paced clock at the first hour)."
        ),
    )
    interval_s: float = Field(
        default=0.01,
        gt=0,
        description=(
            "Seconds between two looks at the clock: at 48 sim h/s an hour's forecast must be made within "
            "21 ms (one sim hour) of the hour's close to be live."
        ),
    )
    timeout_s: float = Field(default=10.0, gt=0, description="HTTP timeout of one call.")
    wait_s: float = Field(
        default=1.0,
        ge=0,
        le=30,
        description=(
            "Longest the client waits on the service for the next hour (GET /clock?after=, answered as "
            "soon as that hour may be asked and its candle is in memory) before it looks again; 0: no "
            "long wait, it looks every interval_s."
        ),
    )


class DashboardSettings(BaseModel):
    """The Streamlit dashboard: it talks to the inference service's HTTP API only."""

    api_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Base URL of the inference service the dashboard reads (its port: BTCMLOPS_SERVE__PORT).",
    )
    mlflow_ui_url: str = Field(
        default="http://127.0.0.1:5000",
        description=(
            "MLflow UI address the dashboard links to; also where the replay's printed `mlflow ui` "
            "command serves (its port) and its links point, and what `make screenshot-mlflow` opens. "
            "In `make stack` it follows MLFLOW_PORT (stack.env)."
        ),
    )
    host: str = Field(default="127.0.0.1", description="Address `btcmlops dashboard` listens on.")
    port: int = Field(
        default=8501,
        ge=1,
        le=65535,
        description="Port `btcmlops dashboard` listens on (and `make screenshot` opens, with stack.env's).",
    )
    refresh_s: float = Field(default=2.0, gt=0, description="How often the live view redraws.")
    hours_shown: int = Field(default=168, ge=24, le=2000, description="Sim hours drawn on the chart.")
    request_timeout_s: float = Field(default=5.0, gt=0, description="HTTP timeout of one API call.")
