"""``create_app(settings)``: the FastAPI inference service, wired from its parts.

The routes (``serving.routes``) ask for what they need through ``serving.deps``; the domain errors they
raise become HTTP answers in ``serving.errors``. Here: the objects they share, the lifespan that runs
the watchers and the prediction log, the middlewares, the routers and the error handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI
from fastapi_offline import FastAPIOffline

from btcmlops.bootstrap import champion_changes, migrate_for_service, serving_registry, serving_store
from btcmlops.contest.changes import StepHook, no_step
from btcmlops.registry import ModelRegistry
from btcmlops.serving.errors import EVERY_ROUTE, add_error_handlers
from btcmlops.serving.inputs import known_query_only
from btcmlops.serving.limits import BodyLimitMiddleware, ReadGate
from btcmlops.serving.live_contest import LiveContest, LiveContestCollector
from btcmlops.serving.metrics import MetricsMiddleware
from btcmlops.serving.openapi import with_stated_limits
from btcmlops.serving.prediction_log import PredictionLogWriter, wal_directory
from btcmlops.serving.read_workers import ReadWorkers
from btcmlops.serving.redoc import DOCS_ASSETS, add_offline_redoc
from btcmlops.serving.routes import ROUTERS
from btcmlops.serving.state import ServiceState
from btcmlops.settings import Settings
from btcmlops.store import PriceStore


def create_app(
    settings: Settings,
    *,
    store: PriceStore | None = None,
    registry: ModelRegistry | None = None,
    on_step: StepHook = no_step,
) -> FastAPI:
    """Build the service; ``store`` and ``registry`` default to the ones ``settings`` names (built by
    the composition root, ``btcmlops.bootstrap``, which also says who migrates the store and when).

    ``on_step`` is called at every step boundary of a change by hand (the crash tests' seam).
    """
    store = store or serving_store(settings)
    registry = registry or serving_registry(settings)
    changes = champion_changes(store, registry, on_step)
    service = ServiceState(settings.serve, store, registry, settings.model.feature_set, changes=changes)
    wal_base = settings.serve.log_wal_dir or settings.home / "serve" / "prediction-log"
    log = PredictionLogWriter(
        store,
        settings.serve.log_flush_interval_s,
        wal_dir=wal_directory(wal_base, store.url),
        max_backlog=settings.serve.log_max_backlog,
        fsync=settings.serve.log_wal_fsync,
    )
    service.metrics.watch_prediction_log(log)
    if settings.serve.shadow_challenger:
        service.live_contest = LiveContest(
            settings.model,
            settings.contest,
            registry,
            store,
            lambda: (service.snapshot.model, service.challenger),
            lambda: service.snapshot.candles(),
            every_s=settings.serve.live_contest_interval_s,
        )
        service.metrics.registry.register(LiveContestCollector(service.live_contest))

    # Swagger UI and ReDoc from the assets fastapi-offline ships: FastAPI's own pages load them from a
    # CDN, a blank page on a closed network (a demo laptop, a locked-down cluster).
    app = FastAPIOffline(
        title="btcmlops inference service",
        summary="Next-hour BTC/USDT close forecasts from the registry's champion, swapped without downtime.",
        version="1",
        lifespan=_lifespan,
        static_url=DOCS_ASSETS,
        redoc_url=None,  # ours below: fastapi-offline's still lets ReDoc fetch its logo from a CDN
        dependencies=[Depends(known_query_only)],
        responses=EVERY_ROUTE,
    )
    app.state.settings = settings
    app.state.service = service
    app.state.store = store
    app.state.prediction_log = log
    app.state.read_gate = ReadGate(settings.serve)
    app.state.read_workers = ReadWorkers(settings.serve, store)
    app.state.changes = changes
    for router in ROUTERS:
        app.include_router(router)
    add_offline_redoc(app)
    add_error_handlers(app)
    app.openapi = with_stated_limits(app, settings)  # type: ignore[method-assign]
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.serve.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=service.metrics)  # outermost: it counts the 413s too
    return app


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Migrate the store, start the prediction log and the watchers; stop them in turn (and the read
    workers, which start with the first long read)."""
    service: ServiceState = app.state.service
    log: PredictionLogWriter = app.state.prediction_log
    await migrate_for_service(service.store)  # a failure is logged with why; the watcher keeps trying
    log.start()
    watcher = asyncio.create_task(service.watch_registry(), name="champion-watcher")
    try:
        yield
    finally:
        app.state.read_workers.close()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await asyncio.to_thread(log.stop)
        with contextlib.suppress(Exception):  # a store that is down forgets it after a while anyway
            await asyncio.to_thread(service.forget_served)
