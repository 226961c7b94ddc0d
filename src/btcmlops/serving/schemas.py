"""The API's request and response bodies, named by role, with the examples OpenAPI shows."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    field_validator,
    model_validator,
)

from btcmlops.features import FEATURE_SETS
from btcmlops.speed import MAX_SPEED

EXAMPLE_HOUR = "2024-03-05T14:00:00Z"

FIRST_YEAR, LAST_YEAR = 1970, 2199
"""Years a time sent to the API may carry, as written: far wider than any market data, narrow enough
that every hour, its target hour and pandas' nanosecond timestamps stay in range whatever the offset."""

_YEAR = "(19[7-9][0-9]|2[01][0-9][0-9])"
_DATE = f"{_YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_HOURS = "([01][0-9]|2[0-3])"
TIME_PATTERN = f"^{_DATE}[Tt ]{_HOURS}:[0-5][0-9](:[0-5][0-9](\\.[0-9]+)?)?([Zz]|[+-]{_HOURS}:?[0-5][0-9])$"
"""ISO 8601 date-time text with a UTC offset and a year in [FIRST_YEAR, LAST_YEAR]: the rule itself, as
the service checks it and as the OpenAPI document states it (a generated client sends nothing refused)."""
HOUR_PATTERN = f"^{_DATE}[Tt ]{_HOURS}:00(:00(\\.0+)?)?([Zz]|[+-]{_HOURS}:?00)$"
"""TIME_PATTERN on the hour: minutes and seconds zero, and an offset of whole hours (so that the
instant is on the hour in UTC too)."""

MAX_CANDLES = 4 * max(feature_set.window_hours for feature_set in FEATURE_SETS.values())
"""Most candles one request may send: a small multiple of the longest feature window (only the last
window is used), so validating a request costs little whatever a client sends."""


_NO_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")
_YEAR_FIRST = re.compile(r"^(\d{4})-")


def _text_matching(pattern: str, what: str) -> Callable[[object], object]:
    """A check that lets only text matching ``pattern`` through, saying what is wrong otherwise:
    pydantic alone would read a number as Unix seconds, and take spellings the document does not state.
    """
    compiled = re.compile(pattern)
    any_time = re.compile(TIME_PATTERN)

    def check(value: object) -> object:
        if isinstance(value, datetime):
            return value  # built in Python, not sent
        if isinstance(value, str) and compiled.match(value):
            return value
        year = _YEAR_FIRST.match(value) if isinstance(value, str) else None
        if not isinstance(value, str):
            why = (
                f"expected {what} as text, such as {EXAMPLE_HOUR}, not {type(value).__name__} {_shown(value)}"
            )
        elif any_time.match(value):
            why = f"{_shown(value)} is not on the hour (minutes and seconds zero, an offset of whole hours)"
        elif _NO_OFFSET.match(value):
            why = f"{_shown(value)} has no timezone offset: add Z or an offset such as +02:00"
        elif year is not None and not FIRST_YEAR <= int(year.group(1)) <= LAST_YEAR:
            why = f"{_shown(value)} is out of range: the year must be from {FIRST_YEAR} to {LAST_YEAR}"
        else:
            why = (
                f"expected {what} with a timezone offset and a year from {FIRST_YEAR} to {LAST_YEAR}, "
                f"such as {EXAMPLE_HOUR}, not {_shown(value)}"
            )
        raise ValueError(why)

    return check


def _json_integer(value: object) -> object:
    """Refuse what JSON Schema's ``integer`` does not admit but pydantic's lax ``int`` would take: ``true``
    (as 1) and text ("3"); ``3.0`` is an integer to both."""
    if isinstance(value, bool | str):
        raise ValueError(f"expected an integer, not {type(value).__name__} {_shown(value)}")
    return value


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


UtcDatetime = Annotated[
    AwareDatetime,
    BeforeValidator(_text_matching(TIME_PATTERN, "an ISO 8601 date-time")),
    AfterValidator(_as_utc),
    Field(json_schema_extra={"pattern": TIME_PATTERN}),
]
"""A date-time sent by a client: ISO 8601 text with an offset (never a number), in range, as UTC."""
UtcHour = Annotated[
    AwareDatetime,
    BeforeValidator(_text_matching(HOUR_PATTERN, "an ISO 8601 date-time on the hour")),
    AfterValidator(_as_utc),
    Field(json_schema_extra={"pattern": HOUR_PATTERN}),
]
"""An hour sent by a client (a candle's open time, the hour to forecast from): a UtcDatetime on the hour."""


def _not_null(value: object, field: str) -> object:
    if value is None:
        raise ValueError(f"'{field}' may be left out but not null")
    return value


def _without_null(schema: dict[str, Any]) -> None:
    """Show optional fields that refuse an explicit null (``_not_null``) without the null branch."""
    for prop in schema.get("properties", {}).values():
        options = prop.get("anyOf")
        if options and {"type": "null"} in options:
            rest = [option for option in options if option != {"type": "null"}]
            del prop["anyOf"]
            if len(rest) == 1:
                prop.update(rest[0])
            else:
                prop["anyOf"] = rest


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
        return _not_null(value, str(info.field_name))

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.timestamp is None) == (self.candles is None):
            raise ValueError("send exactly one of 'timestamp' or 'candles'")
        return self


def _request_schema(schema: dict[str, Any]) -> None:
    _without_null(schema)
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

    version: Annotated[int, BeforeValidator(_json_integer)] = Field(ge=1, le=2**31 - 1, examples=[3])
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
        return _not_null(value, str(info.field_name))

    @model_validator(mode="after")
    def _speed_has_a_speed(self) -> Self:
        if self.action == "speed" and self.speed is None:
            raise ValueError("action 'speed' needs a 'speed'")
        return self


def _clock_change_schema(schema: dict[str, Any]) -> None:
    _without_null(schema)
    schema["if"] = {"properties": {"action": {"const": "speed"}}}
    schema["then"] = {"required": ["speed"]}


PredictionRequest.model_rebuild()


class ErrorPublic(BaseModel):
    """Why a request was not answered."""

    detail: str = Field(examples=["no model loaded yet: the registry has no champion or cannot be reached"])


class FieldErrorPublic(BaseModel):
    """One input that failed validation, named by where it is (``loc``: body, query or header, then
    the field)."""

    loc: list[str | int] = Field(examples=[["body", "timestamp"]])
    msg: str = Field(examples=["Value error, 0001-01-01T00:00:00+01:00 is out of range: ..."])
    type: str = Field(examples=["value_error"])
    input: Any = None
    ctx: dict[str, Any] | None = None


class InvalidInputPublic(BaseModel):
    """422: the fields that failed validation, or one sentence naming the field and what is wrong."""

    detail: list[FieldErrorPublic] | str


class ReadyPublic(BaseModel):
    """Whether the service can answer forecasts: a model loaded and the price store answering."""

    ready: bool
    version: int | None = Field(default=None, description="The version served, when ready.")
    detail: str | None = Field(default=None, description="Why not ready.")


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
