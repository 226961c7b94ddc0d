"""The forecasts (``/predict``, ``/predict/batch``): the champion's next-hour close, from memory.

An hour in the snapshot is answered without the store; one newer than the snapshot, or one the sim
clock in memory calls too early, reads the store first (bounded by ``store_timeout_s``). A forecast
about the market (the store's candles) is logged; one from a client's own candles is not.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
from fastapi import APIRouter

from btcmlops.clock import SimClock, last_closed_hour
from btcmlops.data.rules import candle_problems
from btcmlops.features import build_features, get_feature_set
from btcmlops.serving.deps import AppSettings, PredictionLog, Service
from btcmlops.serving.errors import DOMAIN_ERRORS, NO_MODEL_OR_STORE, ApiError, answer_for, documented
from btcmlops.serving.prediction_log import PredictionLogWriter
from btcmlops.serving.schemas import (
    BatchItemError,
    BatchPredictionPublic,
    BatchPredictionRequest,
    CandleIn,
    IntervalPublic,
    ModelRef,
    PredictionPublic,
    PredictionRequest,
)
from btcmlops.serving.snapshot import Snapshot, hour_number, hour_time, whole_hour
from btcmlops.serving.state import ServiceState, StoreUnavailableError
from btcmlops.store import LoggedPrediction

router = APIRouter(tags=["forecast"])


@router.post(
    "/predict",
    response_model=PredictionPublic,
    responses=documented(404, 425, 503, why=NO_MODEL_OR_STORE),
)
async def predict(body: PredictionRequest, service: Service, log: PredictionLog) -> PredictionPublic:
    """Forecast the close after ``timestamp`` (read from the store) or after the last candle sent."""
    if (body.timestamp is None) == (body.candles is None):
        raise ApiError(422, "send exactly one of 'timestamp' or 'candles'")
    if body.timestamp is not None:
        answer = await forecast_hour(service, log, body.timestamp)
        if answer.in_sample:  # rare (a look back): say which version forecast the hour live, if any
            answer.served_live_by = await service.served_live_by(answer.target_time)
        return answer
    assert body.candles is not None
    return forecast_from_candles(service, log, body.candles)


@router.post(
    "/predict/batch",
    response_model=BatchPredictionPublic,
    responses=documented(413, 503, why=NO_MODEL_OR_STORE),
)
async def predict_batch(
    body: BatchPredictionRequest, service: Service, log: PredictionLog, settings: AppSettings
) -> BatchPredictionPublic:
    """Forecast from several hours; each hour that cannot be answered is listed with why."""
    if len(body.timestamps) > settings.serve.max_batch:
        raise ApiError(
            413, f"{len(body.timestamps)} timestamps; at most {settings.serve.max_batch} per batch"
        )
    _model_or_503(service.snapshot)
    predictions, errors = [], []
    for index, moment in enumerate(body.timestamps):
        try:
            predictions.append(await forecast_hour(service, log, moment))
        except DOMAIN_ERRORS as error:  # this hour cannot be answered (or needed the store); others may
            answer = answer_for(error)
            errors.append(
                BatchItemError(index=index, timestamp=moment, status=answer.status, detail=answer.detail)
            )
    return BatchPredictionPublic(predictions=predictions, errors=errors)


async def forecast_hour(
    service: ServiceState, log: PredictionLogWriter, moment: datetime
) -> PredictionPublic:
    """The champion's forecast from the hour ``moment``, from memory, reading the store only if needed.

    Raises:
        ApiError: 404 (no candle), 422 (not on the hour, no feature window), 425 (not closed in sim
            time yet, or the month's last hour while the clock holds), 503 (no model loaded).
        StoreUnavailableError: The hour needed the store (the clock, a new candle) and it did not answer.
    """
    hour = whole_hour(moment)
    if hour is None:
        raise ApiError(422, f"timestamp {moment.isoformat()} is not on the hour")
    snapshot = service.snapshot
    _model_or_503(snapshot)
    if service.clock is not None:
        if hour > _forecastable(service.clock):
            try:  # the copy of the clock may be older than the asker's
                await service.within_store_timeout(service.refresh_clock())
            except StoreUnavailableError as error:  # too early by the clock in memory: cannot tell
                raise StoreUnavailableError(
                    f"{error} (the clock must be read to tell whether {_stamp(hour)} has closed)"
                ) from error
        clock = service.clock
        assert clock is not None
        closed = int(last_closed_hour(clock.sim_now(datetime.now(UTC))).timestamp()) // 3600
        if hour > closed:
            raise ApiError(
                425,  # Too Early: the same request succeeds once sim time has closed the hour
                f"the hour {_stamp(hour)} has not closed yet in sim time "
                f"(the newest closed hour is {_stamp(closed)})",
            )
        if hour > _forecastable(clock):
            raise ApiError(
                425,
                f"the forecast from {_stamp(hour)}, the last hour of a month, belongs to the champion "
                f"that month's contest decides; the clock holds ({clock.hold_reason}): ask again",
            )
        snapshot = service.snapshot
    index = snapshot.index_of(hour)
    if index is None and (snapshot.latest_hour is None or hour > snapshot.latest_hour):
        try:  # maybe the hour closed since the last refresh
            await service.within_store_timeout(service.refresh_candles())
        except StoreUnavailableError as error:  # what is in memory cannot answer it
            raise StoreUnavailableError(f"{error} (the candle at {_stamp(hour)} is not in memory)") from error
        snapshot = service.snapshot
        index = snapshot.index_of(hour)
    if index is None:
        latest = "none" if snapshot.latest_hour is None else _stamp(snapshot.latest_hour)
        raise ApiError(404, f"no candle at {_stamp(hour)} in the price store (latest: {latest})")
    if not snapshot.valid[index]:
        raise ApiError(422, _why_no_window(snapshot, index, _window(snapshot)))
    forecast = (float(snapshot.predicted[index]), float(snapshot.lower[index]), float(snapshot.upper[index]))
    answer = _answer(service, log, snapshot, hour, forecast, float(snapshot.closes[index]))
    await service.forecast_made(answer.timestamp)
    return answer


def forecast_from_candles(
    service: ServiceState, log: PredictionLogWriter, candles: list[CandleIn]
) -> PredictionPublic:
    """The champion's forecast from the candles a client sent (checked as the store's are); not logged.

    Raises:
        ApiError: 422 (too few, not hourly, not consecutive, an impossible candle), 425 (the last one
            has not closed in sim time), 503 (no model loaded).
    """
    snapshot = service.snapshot
    _model_or_503(snapshot)
    window = _window(snapshot)
    last_hour = hour_number(candles[-1].open_time) if candles else None
    if service.clock is not None and last_hour is not None and last_hour > _forecastable(service.clock):
        raise ApiError(
            425,
            f"candles[{len(candles) - 1}].open_time {candles[-1].open_time.isoformat()} has not closed "
            "yet in sim time: no forecast from the future, whoever sends the candles",
        )
    if len(candles) < window:
        raise ApiError(422, f"{len(candles)} candles sent; the feature window needs at least {window}")
    for number, candle in enumerate(candles):
        if whole_hour(candle.open_time) is None:
            raise ApiError(
                422, f"candles[{number}].open_time {candle.open_time.isoformat()} is not on the hour"
            )
        problems = candle_problems(candle.open, candle.high, candle.low, candle.close, candle.volume)
        if problems:
            field, message = problems[0]
            raise ApiError(422, f"candles[{number}].{field}: {message}")
        if number and hour_number(candle.open_time) != hour_number(candles[number - 1].open_time) + 1:
            raise ApiError(
                422,
                f"candles[{number}] ({candle.open_time.isoformat()}) is not one hour after "
                f"candles[{number - 1}]",
            )
    frame = pd.DataFrame([candle.model_dump() for candle in candles[-window:]])
    frame["open_time"] = pd.to_datetime(frame["open_time"], utc=True).astype("datetime64[ns, UTC]")
    features = build_features(frame, snapshot.feature_set)
    model = snapshot.model
    assert model is not None
    forecaster, last_row = model.forecaster, features.iloc[-1:]
    matrix = last_row.loc[:, list(forecaster.feature_columns)].to_numpy(dtype=np.float64)
    predicted, lower, upper = forecaster.forecast_closes(matrix, last_row["close"].to_numpy(dtype=np.float64))
    last = float(frame["close"].iloc[-1])
    hour = hour_number(candles[-1].open_time)
    forecast = (float(predicted[0]), float(lower[0]), float(upper[0]))
    return _answer(service, log, snapshot, hour, forecast, last, market=False)


def _answer(
    service: ServiceState,
    log: PredictionLogWriter,
    snapshot: Snapshot,
    hour: int,
    forecast: tuple[float, float, float],
    last_close: float,
    *,
    market: bool = True,
) -> PredictionPublic:
    """Answer ``forecast`` (the close, the interval's lower and upper close), and log the answer when it
    is about the market (the store's candles).

    A forecast from a client's own candles is answered but never logged: the log is the record of
    the market, and what it says about each version's live skill must not be written by a client.
    """
    model = snapshot.model
    assert model is not None
    predicted, lower, upper = forecast
    level = model.forecaster.interval_level
    if level is None:  # vetting refuses such a version; a forecast never goes out without its interval
        raise ApiError(
            503, f"version {model.info.version} has no interval to serve: retrain it (or replay) to get one"
        )
    timestamp = hour_time(hour)
    target = hour_time(hour + 1)
    now = datetime.now(UTC)
    if market:
        sim = service.clock.sim_now(now) if service.clock is not None else None
        logged = LoggedPrediction(
            timestamp,
            target,
            predicted,
            last_close,
            model.info.version,
            now,
            sim,
            interval_level=level,
            lower_close=lower,
            upper_close=upper,
        )
        log.append(logged)
        service.live_scores.note_made_in_time(logged)
        if logged.live and target > model.info.window.train_end:
            service.live_scores.note_live_forecast(hour + 1)  # seen at once, not after the log's flush
    service.metrics.predictions.inc()
    return PredictionPublic(
        timestamp=timestamp,
        target_time=target,
        predicted_close=predicted,
        last_close=last_close,
        interval=IntervalPublic(level=level, lower=lower, upper=upper),
        model=ModelRef(
            name=service.registry.model_name, version=model.info.version, run_id=model.info.run_id
        ),
        in_sample=target <= model.info.window.train_end,
    )


def _model_or_503(snapshot: Snapshot) -> None:
    if snapshot.model is None:
        raise ApiError(503, "no model loaded yet: the registry has no champion or cannot be reached")


def _window(snapshot: Snapshot) -> int:
    return get_feature_set(snapshot.feature_set).window_hours


def _why_no_window(snapshot: Snapshot, index: int, window: int) -> str:
    """Say which missing hour (or missing history) keeps hour ``index`` from having features."""
    hour = int(snapshot.hours[index])
    for back in range(1, window):
        expected = hour - back
        if index - back < 0:
            return (
                f"not enough history before {_stamp(hour)}: the feature window needs the {window} hours "
                f"from {_stamp(hour - window + 1)}"
            )
        if snapshot.hours[index - back] != expected:
            return (
                f"the {window}-hour feature window ending at {_stamp(hour)} crosses "
                f"the missing hour {_stamp(expected)}"
            )
    return f"no features for {_stamp(hour)}"


def _forecastable(clock: SimClock) -> int:
    """The newest hour (hours since the epoch) one may forecast from now, by ``clock``."""
    return int(clock.last_forecastable_hour(datetime.now(UTC)).timestamp()) // 3600


def _stamp(hour: int) -> str:
    return f"{hour_time(hour):%Y-%m-%dT%H:%MZ}"
