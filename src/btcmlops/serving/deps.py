"""What a route may ask for, as ``Annotated`` dependencies: routes read as plain signatures.

Each is one object ``create_app`` made and put on ``app.state``; ``ControlKey`` guards the changes.
All ``async``: FastAPI runs a plain ``def`` dependency in its thread pool, a hop on every request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from btcmlops.contest.changes import ChampionChanges
from btcmlops.serving.errors import ApiError
from btcmlops.serving.inputs import key_matches
from btcmlops.serving.limits import ReadGate
from btcmlops.serving.prediction_log import PredictionLogWriter
from btcmlops.serving.read_workers import ReadWorkers
from btcmlops.serving.state import ServiceState
from btcmlops.settings import Settings
from btcmlops.store import PriceStore


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_service(request: Request) -> ServiceState:
    service: ServiceState = request.app.state.service
    return service


async def get_store(request: Request) -> PriceStore:
    store: PriceStore = request.app.state.store
    return store


async def get_prediction_log(request: Request) -> PredictionLogWriter:
    log: PredictionLogWriter = request.app.state.prediction_log
    return log


async def get_changes(request: Request) -> ChampionChanges:
    changes: ChampionChanges = request.app.state.changes
    return changes


async def get_read_gate(request: Request) -> ReadGate:
    gate: ReadGate = request.app.state.read_gate
    return gate


async def get_read_workers(request: Request) -> ReadWorkers:
    workers: ReadWorkers = request.app.state.read_workers
    return workers


AppSettings = Annotated[Settings, Depends(get_settings)]
Service = Annotated[ServiceState, Depends(get_service)]
"""The snapshot served, the watchers' state, the clock in memory, the metrics."""
Store = Annotated[PriceStore, Depends(get_store)]
PredictionLog = Annotated[PredictionLogWriter, Depends(get_prediction_log)]
Changes = Annotated[ChampionChanges, Depends(get_changes)]
"""Champion changes by hand (promote, rollback), journaled and audited as the contest's are."""
Gate = Annotated[ReadGate, Depends(get_read_gate)]
Workers = Annotated[ReadWorkers, Depends(get_read_workers)]
"""Where the long reads' pages are built: the read workers' processes."""


async def require_control_key(
    request: Request, settings: AppSettings, api_key: Annotated[str | None, Header(alias="X-API-Key")] = None
) -> None:
    """Let a change through only with the configured control key (403: none configured; 401: wrong;
    400: sent more than once, where which one counts would depend on the proxies in between)."""
    expected = settings.serve.control_key
    if expected is None:
        raise ApiError(403, "control changes are disabled: set BTCMLOPS_SERVE__CONTROL_KEY")
    sent = len(request.headers.getlist("x-api-key"))
    if sent > 1:
        raise ApiError(400, f"X-API-Key sent {sent} times: send it once")
    if not key_matches(api_key, expected.get_secret_value()):
        raise ApiError(401, "wrong or missing X-API-Key")


ControlKey = Depends(require_control_key)
"""For a route's ``dependencies``: a change (clock, champion) needs the X-API-Key header."""
