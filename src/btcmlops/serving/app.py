"""``create_app(settings)``: the FastAPI inference service."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Annotated

import pandas as pd
from fastapi import Depends, FastAPI, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from btcmlops.clock import SimClock, last_closed_hour, reset_clock
from btcmlops.contest.changes import ChampionChanges, ChangeRefusedError
from btcmlops.data.rules import candle_problems
from btcmlops.features import build_features, get_feature_set
from btcmlops.registry import ModelRegistry
from btcmlops.serving import reads
from btcmlops.serving.inputs import EVERY_ROUTE, documented, invalid_input, key_matches, known_query_only
from btcmlops.serving.limits import BodyLimitMiddleware
from btcmlops.serving.metrics import MetricsMiddleware
from btcmlops.serving.prediction_log import PredictionLogWriter, wal_directory
from btcmlops.serving.reads import ReadGate
from btcmlops.serving.schemas import (
    BatchItemError,
    BatchPredictionPublic,
    BatchPredictionRequest,
    CandleIn,
    ChampionChangePublic,
    ClockChange,
    ClockPublic,
    DecisionPublic,
    ModelInfoPublic,
    ModelRef,
    PredictionPublic,
    PredictionRequest,
    PromotionRequest,
    ReadyPublic,
    RollbackRequest,
    ShadowForecastPublic,
    ShadowPublic,
    TrainingWindowPublic,
    UtcDatetime,
)
from btcmlops.serving.snapshot import Snapshot, hour_number, shadow_forecasts, whole_hour
from btcmlops.serving.state import STORE_ERRORS, ServiceState, StoreUnavailableError, describe_error
from btcmlops.settings import Settings
from btcmlops.store import AuditEntry, ChangeInProgressError, LoggedPrediction, PriceStore

API_ACTOR = "api (X-API-Key)"


class ApiError(Exception):
    """A request that cannot be answered, with the HTTP status and words that say why."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _hour_time(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * 3600, UTC)


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


def _stamp(hour: int) -> str:
    return f"{_hour_time(hour):%Y-%m-%dT%H:%MZ}"


def get_state(request: Request) -> ServiceState:
    service: ServiceState = request.app.state.service
    return service


State = Annotated[ServiceState, Depends(get_state)]


def create_app(
    settings: Settings, *, store: PriceStore | None = None, registry: ModelRegistry | None = None
) -> FastAPI:
    """Build the service; ``store`` and ``registry`` default to the ones ``settings`` names."""
    if settings.store.url is None and store is None:
        raise ValueError("the inference service needs a price store: set BTCMLOPS_STORE__URL")
    if settings.mlflow.tracking_uri is None and registry is None:
        raise ValueError("the inference service needs a registry: set BTCMLOPS_MLFLOW__TRACKING_URI")
    store = store or PriceStore(settings.store.url or "", settings.store)
    registry = registry or ModelRegistry(
        settings.mlflow.tracking_uri or "",
        settings.mlflow.experiment,
        settings.mlflow.registered_model,
        create=False,
    )
    state = ServiceState(settings.serve, store, registry, settings.model.feature_set)
    window = get_feature_set(settings.model.feature_set).window_hours
    wal_base = settings.serve.log_wal_dir or settings.home / "serve" / "prediction-log"
    log = PredictionLogWriter(
        store,
        settings.serve.log_flush_interval_s,
        wal_dir=wal_directory(wal_base, store.url),
        max_backlog=settings.serve.log_max_backlog,
        fsync=settings.serve.log_wal_fsync,
    )
    state.metrics.watch_prediction_log(log)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with contextlib.suppress(Exception):  # the store may not be up yet: the watcher keeps trying
            await asyncio.to_thread(store.migrate)
        # Imports (MLflow, pandas) leave ~1M long-lived objects; a full collection scanning them stalls
        # requests for 100+ ms. Freeze them out of the collector's reach, as long-running servers do.
        gc.collect()
        gc.freeze()
        log.start()
        watcher = asyncio.create_task(state.watch_registry(), name="champion-watcher")
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await asyncio.to_thread(log.stop)
            with contextlib.suppress(Exception):  # a store that is down forgets it after a while anyway
                await asyncio.to_thread(state.forget_served)

    # Swagger UI and ReDoc from the assets fastapi-offline ships: FastAPI's own pages load them from a
    # CDN, a blank page on a closed network (a demo laptop, a locked-down cluster).
    app = FastAPIOffline(
        title="btcmlops inference service",
        summary="Next-hour BTC/USDT close forecasts from the registry's champion, swapped without downtime.",
        version="1",
        lifespan=lifespan,
        static_url="/docs/assets",
        dependencies=[Depends(known_query_only)],
        responses=EVERY_ROUTE,
    )
    app.state.service = state
    app.state.store = store
    app.state.read_gate = ReadGate(settings.serve)
    app.include_router(reads.router)
    app.state.prediction_log = log
    app.add_exception_handler(RequestValidationError, invalid_input)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.serve.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)  # outermost: it counts the 413s too

    def _serve(
        snapshot: Snapshot, hour: int, predicted: float, last_close: float, *, market: bool = True
    ) -> PredictionPublic:
        """Answer, and log the answer when it is about the market (the store's candles).

        A forecast from a client's own candles is answered but never logged: the log is the record of
        the market, and what it says about each version's live skill must not be written by a client.
        """
        model = snapshot.model
        assert model is not None
        timestamp = _hour_time(hour)
        target = _hour_time(hour + 1)
        now = datetime.now(UTC)
        if market:
            sim = state.clock.sim_now(now) if state.clock is not None else None
            log.append(
                LoggedPrediction(timestamp, target, predicted, last_close, model.info.version, now, sim)
            )
        state.metrics.predictions.inc()
        return PredictionPublic(
            timestamp=timestamp,
            target_time=target,
            predicted_close=predicted,
            last_close=last_close,
            model=ModelRef(name=registry.model_name, version=model.info.version, run_id=model.info.run_id),
            in_sample=target <= model.info.window.train_end,
        )

    def _model_or_503(snapshot: Snapshot) -> None:
        if snapshot.model is None:
            raise ApiError(503, "no model loaded yet: the registry has no champion or cannot be reached")

    async def _by_timestamp(moment: datetime) -> PredictionPublic:
        hour = whole_hour(moment)
        if hour is None:
            raise ApiError(422, f"timestamp {moment.isoformat()} is not on the hour")
        snapshot = state.snapshot
        _model_or_503(snapshot)
        if state.clock is not None:
            if hour > _forecastable(state.clock):
                try:  # the copy of the clock may be older than the asker's
                    await state.within_store_timeout(state.refresh_clock())
                except StoreUnavailableError as error:  # too early by the clock in memory: cannot tell
                    raise StoreUnavailableError(
                        f"{error} (the clock must be read to tell whether {_stamp(hour)} has closed)"
                    ) from error
            clock = state.clock
            assert clock is not None
            real_now = datetime.now(UTC)
            closed = int(last_closed_hour(clock.sim_now(real_now)).timestamp()) // 3600
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
            snapshot = state.snapshot
        index = snapshot.index_of(hour)
        if index is None and (snapshot.latest_hour is None or hour > snapshot.latest_hour):
            try:  # maybe the hour closed since the last refresh
                await state.within_store_timeout(state.refresh_candles())
            except StoreUnavailableError as error:  # what is in memory cannot answer it
                raise StoreUnavailableError(
                    f"{error} (the candle at {_stamp(hour)} is not in memory)"
                ) from error
            snapshot = state.snapshot
            index = snapshot.index_of(hour)
        if index is None:
            latest = (
                "none"
                if snapshot.latest_hour is None
                else f"{_hour_time(snapshot.latest_hour):%Y-%m-%dT%H:%MZ}"
            )
            raise ApiError(
                404, f"no candle at {_hour_time(hour):%Y-%m-%dT%H:%MZ} in the price store (latest: {latest})"
            )
        if not snapshot.valid[index]:
            raise ApiError(422, _why_no_window(snapshot, index, window))
        answer = _serve(snapshot, hour, float(snapshot.predicted[index]), float(snapshot.closes[index]))
        await state.forecast_made(answer.timestamp)
        return answer

    def _by_candles(candles: list[CandleIn]) -> PredictionPublic:
        snapshot = state.snapshot
        _model_or_503(snapshot)
        last_hour = hour_number(candles[-1].open_time) if candles else None
        if state.clock is not None and last_hour is not None and last_hour > _forecastable(state.clock):
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
        predicted = float(model.forecaster.predict_close(features.iloc[-1:])[0])
        last = float(frame["close"].iloc[-1])
        return _serve(snapshot, hour_number(candles[-1].open_time), predicted, last, market=False)

    @app.exception_handler(ApiError)
    async def _prediction_error(request: Request, error: ApiError) -> JSONResponse:
        return JSONResponse(status_code=error.status, content={"detail": error.detail})

    for store_error in STORE_ERRORS:  # one place: a store that cannot be reached is a 503, never a 500
        app.add_exception_handler(store_error, _store_unavailable)

    @app.post(
        "/predict",
        response_model=PredictionPublic,
        tags=["forecast"],
        responses=documented(400, 404, 425, 503),
    )
    async def predict(body: PredictionRequest) -> PredictionPublic:
        """Forecast the close after ``timestamp`` (read from the store) or after the last candle sent."""
        if (body.timestamp is None) == (body.candles is None):
            raise ApiError(422, "send exactly one of 'timestamp' or 'candles'")
        if body.timestamp is not None:
            answer = await _by_timestamp(body.timestamp)
            # Rare (a look back): say which version forecast the hour live, if any; not asked of a store
            # the store watcher finds down (the forecast stands without it).
            if answer.in_sample and state.store_error is None:
                target = answer.target_time
                try:
                    logged = await state.store_call(lambda: store.read_predictions(start=target, end=target))
                except StoreUnavailableError:  # the forecast stands; who served it live stays unsaid
                    logged = []
                live = [row.model_version for row in logged if row.live]
                answer.served_live_by = live[0] if live else None
            return answer
        assert body.candles is not None
        return _by_candles(body.candles)

    @app.post(
        "/predict/batch",
        response_model=BatchPredictionPublic,
        tags=["forecast"],
        responses=documented(400, 413, 503),
    )
    async def predict_batch(body: BatchPredictionRequest) -> BatchPredictionPublic:
        """Forecast from several hours; each hour that cannot be answered is listed with why."""
        if len(body.timestamps) > settings.serve.max_batch:
            raise ApiError(
                413, f"{len(body.timestamps)} timestamps; at most {settings.serve.max_batch} per batch"
            )
        _model_or_503(state.snapshot)
        predictions, errors = [], []
        for index, moment in enumerate(body.timestamps):
            try:
                predictions.append(await _by_timestamp(moment))
            except ApiError as error:
                errors.append(
                    BatchItemError(index=index, timestamp=moment, status=error.status, detail=error.detail)
                )
            except StoreUnavailableError as error:  # this hour needed the store; the others may not
                errors.append(
                    BatchItemError(index=index, timestamp=moment, status=503, detail=_store_detail(error))
                )
        return BatchPredictionPublic(predictions=predictions, errors=errors)

    def _clock_public(clock: SimClock) -> ClockPublic:
        real_now = datetime.now(UTC)
        now = clock.sim_now(real_now)
        current_state = clock.state(real_now)
        return ClockPublic(
            sim_now=now,
            last_closed_hour=last_closed_hour(now),
            last_forecastable_hour=clock.last_forecastable_hour(real_now),
            speed=clock.speed,
            paused=clock.paused,
            state=current_state,
            holding_for=clock.holding_for(real_now),
            forecast_due=clock.forecast_due if clock.paced else None,
            hold_at=clock.hold_at,
            end_at=clock.end_at,
        )

    @app.get("/clock", response_model=ClockPublic, tags=["clock"], responses=documented(404, 503))
    async def clock() -> ClockPublic:
        """The shared sim clock (read from the store, so every service agrees)."""
        current = await state.store_call(store.read_clock)
        if current is None:
            raise ApiError(404, "no sim clock is set in this store (POST /clock with action 'reset')")
        return _clock_public(current)

    @app.post(
        "/clock",
        response_model=ClockPublic,
        tags=["clock"],
        responses=documented(400, 401, 403, 409),
    )
    def change_clock(
        change: ClockChange, api_key: Annotated[str | None, Header(alias="X-API-Key")] = None
    ) -> ClockPublic:
        """Set the speed, pause, resume or reset the sim clock (needs the X-API-Key header)."""
        _require_control_key(api_key)
        max_speed = settings.clock.max_speed
        if change.speed is not None and change.speed > max_speed:
            raise RequestValidationError(
                [
                    {
                        "type": "less_than_equal",
                        "loc": ("body", "speed"),
                        "msg": f"speed must be at most {max_speed:g} (BTCMLOPS_CLOCK__MAX_SPEED)",
                        "input": change.speed,
                    }
                ]
            )
        now = datetime.now(UTC)
        if change.action == "reset":
            current = store.read_clock()
            updated: SimClock | None = reset_clock(
                settings.clock,
                now,
                start=change.start,
                speed=change.speed,
                end_at=current.end_at if current else None,
            )
            assert updated is not None
            store.write_clock(updated)
        else:
            if change.action == "speed" and change.speed is None:
                raise ApiError(422, "action 'speed' needs a positive 'speed'")
            updated = store.update_clock(lambda current: _changed(current, change, now, max_speed))
            if updated is None:
                raise ApiError(409, "no sim clock yet: reset it first")
        state.clock = updated
        return _clock_public(updated)

    def _require_control_key(api_key: str | None) -> None:
        expected = settings.clock.api_key
        if expected is None:
            raise ApiError(403, "control changes are disabled: set BTCMLOPS_CLOCK__API_KEY")
        if not key_matches(api_key, expected.get_secret_value()):
            raise ApiError(401, "wrong or missing X-API-Key")

    def _sim_now() -> datetime | None:
        clock = store.read_clock()
        return None if clock is None else clock.sim_now(datetime.now(UTC))

    changes = ChampionChanges(registry, store.journal, store, now=lambda: datetime.now(UTC), sim_now=_sim_now)
    control_errors = documented(400, 401, 403, 409)

    def _change(make: Callable[[], AuditEntry]) -> ChampionChangePublic:
        try:
            row = make()
        except (ChangeRefusedError, ChangeInProgressError) as error:
            raise ApiError(409, str(error)) from None
        return ChampionChangePublic(**vars(row))

    @app.post("/model/promote", response_model=ChampionChangePublic, tags=["model"], responses=control_errors)
    def promote(
        body: PromotionRequest, api_key: Annotated[str | None, Header(alias="X-API-Key")] = None
    ) -> ChampionChangePublic:
        """Make a version the champion now (needs X-API-Key); recorded in the audit as manual."""
        _require_control_key(api_key)
        return _change(lambda: changes.promote(body.version, reason=body.reason, actor=API_ACTOR))

    @app.post(
        "/model/rollback", response_model=ChampionChangePublic, tags=["model"], responses=control_errors
    )
    def rollback(
        body: RollbackRequest, api_key: Annotated[str | None, Header(alias="X-API-Key")] = None
    ) -> ChampionChangePublic:
        """Put the previous champion back (needs X-API-Key); recorded in the audit as manual."""
        _require_control_key(api_key)
        return _change(lambda: changes.rollback(reason=body.reason, actor=API_ACTOR))

    @app.get(
        "/model/history", response_model=list[ChampionChangePublic], tags=["model"], responses=documented(503)
    )
    async def model_history() -> list[ChampionChangePublic]:
        """Every change of champion, oldest first: by contest, by hand, or from outside btcmlops."""
        return [ChampionChangePublic(**vars(row)) for row in await state.store_call(changes.history)]

    @app.get("/model", response_model=ModelInfoPublic, tags=["service"])
    async def model_info(service: State) -> ModelInfoPublic:
        """What is being served, since when, and how the last registry check went."""
        snapshot = service.snapshot
        served = snapshot.model
        window_tags = served.info.window if served else None
        return ModelInfoPublic(
            name=registry.model_name,
            version=served.info.version if served else None,
            run_id=served.info.run_id if served else None,
            feature_set=snapshot.feature_set,
            training_window=TrainingWindowPublic(
                train_start=window_tags.train_start,
                train_end=window_tags.train_end,
                train_rows=window_tags.train_rows,
                data_hash=window_tags.data_hash,
                trained_through=window_tags.trained_through,
            )
            if window_tags
            else None,
            loaded_at=served.loaded_at if served else None,
            last_registry_check=service.last_check,
            last_swap_error=service.last_swap_error,
            store_error=service.store_error,
            last_store_answer=service.last_store_answer,
            candles_in_memory=len(snapshot.hours),
            latest_candle=_hour_time(snapshot.latest_hour) if snapshot.latest_hour is not None else None,
        )

    @app.get("/healthz", tags=["service"])
    async def healthz() -> dict[str, str]:
        """The process lives."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        response_model=ReadyPublic,
        tags=["service"],
        responses={503: {"model": ReadyPublic, "description": "Not ready"}},
    )
    async def readyz(service: State) -> JSONResponse:
        """Ready when a model is loaded and the price store answers (within ``store_timeout_s``)."""
        if service.snapshot.model is None:
            return JSONResponse(status_code=503, content={"ready": False, "detail": "no model loaded yet"})
        try:
            await service.store_call(store.ping)
        except Exception as error:
            return JSONResponse(status_code=503, content={"ready": False, "detail": _store_detail(error)})
        return JSONResponse(content={"ready": True, "version": service.snapshot.model.info.version})

    @app.get(
        "/metrics",
        tags=["service"],
        response_class=Response,
        responses={
            200: {
                "description": "Prometheus text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    async def metrics(service: State) -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/shadow", response_model=ShadowPublic, tags=["read"])
    def shadow(
        service: State,
        start: Annotated[UtcDatetime, Query(description="First hour T", examples=["2024-03-01T00:00:00Z"])],
        end: Annotated[UtcDatetime, Query(description="Last hour T", examples=["2024-03-07T23:00:00Z"])],
    ) -> ShadowPublic:
        """The challenger's forecasts from the hours in [start, end] it was not trained on."""
        challenger = service.challenger
        if challenger is None:
            return ShadowPublic(version=None, forecasts=[])
        hours, predicted = shadow_forecasts(
            service.snapshot, challenger, hour_number(start), hour_number(end)
        )
        return ShadowPublic(
            version=challenger.info.version,
            forecasts=[
                ShadowForecastPublic(
                    timestamp=_hour_time(int(hour)),
                    target_time=_hour_time(int(hour) + 1),
                    predicted_close=float(value),
                )
                for hour, value in zip(hours, predicted, strict=True)
            ],
        )

    @app.get("/decisions", response_model=list[DecisionPublic], tags=["read"], responses=documented(503))
    async def decisions() -> list[DecisionPublic]:
        """Every contest decision of this registered model, oldest first, with its MLflow run."""
        rows = await state.store_call(lambda: store.list_decisions(registry.model_name))
        months = {f"{row.eval_start:%Y-%m}" for row in rows}
        experiment_id, runs = await asyncio.to_thread(state.contest_runs, months)  # MLflow: its own timeout
        return [
            DecisionPublic(
                **vars(row), experiment_id=experiment_id, run_id=runs.get(f"{row.eval_start:%Y-%m}")
            )
            for row in rows
        ]

    return app


def _store_detail(error: BaseException) -> str:
    """Why the store cannot answer, for a 503's detail: the store named, then the cause."""
    cause = str(error) if isinstance(error, StoreUnavailableError) else describe_error(error)
    return f"price store unreachable: {cause}"[:500]


async def _store_unavailable(request: Request, error: Exception) -> JSONResponse:
    """503 for a store that refused, lost the connection or did not answer in time; ask again later."""
    return JSONResponse(
        status_code=503, content={"detail": _store_detail(error)}, headers={"Retry-After": "1"}
    )


def _forecastable(clock: SimClock) -> int:
    """The newest hour (hours since the epoch) one may forecast from now, by ``clock``."""
    return int(clock.last_forecastable_hour(datetime.now(UTC)).timestamp()) // 3600


def _changed(clock: SimClock, change: ClockChange, now: datetime, max_speed: float) -> SimClock:
    if change.action == "speed":
        assert change.speed is not None
        return clock.with_speed(change.speed, now, max_speed=max_speed)
    return clock.pause(now) if change.action == "pause" else clock.resume(now)


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
