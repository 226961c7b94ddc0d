"""The champion (``/model``): what is served, and changes of champion by hand, with their history.

A promotion or rollback goes through ``ChampionChanges`` as the contest's own do (journaled, audited
as manual); this service then follows the ``champion`` alias like every other replica.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter

from btcmlops.redaction import describe_error
from btcmlops.serving.deps import Changes, ControlKey, Service
from btcmlops.serving.errors import (
    STORE_OR_REGISTRY,
    RegistryUnavailableError,
    documented,
    registry_unreachable,
)
from btcmlops.serving.schemas import (
    ChampionChangePublic,
    ModelInfoPublic,
    PromotionRequest,
    RollbackRequest,
    TrainingWindowPublic,
)
from btcmlops.serving.snapshot import hour_time
from btcmlops.store import AuditEntry

router = APIRouter()

API_ACTOR = "api (X-API-Key)"
_CHANGE = documented(400, 401, 403, 409, 503, why=STORE_OR_REGISTRY)


@router.post(
    "/model/promote",
    response_model=ChampionChangePublic,
    tags=["model"],
    dependencies=[ControlKey],
    responses=_CHANGE,
)
def promote(body: PromotionRequest, changes: Changes) -> ChampionChangePublic:
    """Make a version the champion now (needs X-API-Key); recorded in the audit as manual."""
    return _carry_out(lambda: changes.promote(body.version, reason=body.reason, actor=API_ACTOR))


@router.post(
    "/model/rollback",
    response_model=ChampionChangePublic,
    tags=["model"],
    dependencies=[ControlKey],
    responses=_CHANGE,
)
def rollback(body: RollbackRequest, changes: Changes) -> ChampionChangePublic:
    """Put the previous champion back (needs X-API-Key); recorded in the audit as manual."""
    return _carry_out(lambda: changes.rollback(reason=body.reason, actor=API_ACTOR))


def _carry_out(change: Callable[[], AuditEntry]) -> ChampionChangePublic:
    """Make the change; an MLflow that cannot be reached is a 503 (ask again), not a 500."""
    try:
        row = change()
    except Exception as error:
        if registry_unreachable(error):
            raise RegistryUnavailableError(describe_error(error)) from error
        raise
    return ChampionChangePublic(**vars(row))


@router.get(
    "/model/history", response_model=list[ChampionChangePublic], tags=["model"], responses=documented(503)
)
async def model_history(service: Service, changes: Changes) -> list[ChampionChangePublic]:
    """Every change of champion, oldest first: by contest, by hand, or from outside btcmlops."""
    return [ChampionChangePublic(**vars(row)) for row in await service.store_call(changes.history)]


@router.get("/model", response_model=ModelInfoPublic, tags=["service"])
async def model_info(service: Service) -> ModelInfoPublic:
    """What is being served, since when, and how the last registry check went."""
    snapshot = service.snapshot
    served = snapshot.model
    window_tags = served.info.window if served else None
    return ModelInfoPublic(
        name=service.registry.model_name,
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
        latest_candle=hour_time(snapshot.latest_hour) if snapshot.latest_hour is not None else None,
    )
