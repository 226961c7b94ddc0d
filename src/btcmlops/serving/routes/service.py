"""The service itself (``/healthz``, ``/readyz``, ``/metrics``): alive, ready, and how it is doing."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from btcmlops.serving.deps import Service
from btcmlops.serving.errors import store_detail
from btcmlops.serving.schemas import ReadyPublic

router = APIRouter(tags=["service"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process lives."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=ReadyPublic,
    responses={503: {"model": ReadyPublic, "description": "Not ready"}},
)
async def readyz(service: Service) -> JSONResponse:
    """Ready when a model is loaded and the price store answers (within ``store_timeout_s``)."""
    if service.snapshot.model is None:
        return JSONResponse(status_code=503, content={"ready": False, "detail": "no model loaded yet"})
    try:
        await service.store_call(service.store.ping)
    except Exception as error:
        return JSONResponse(status_code=503, content={"ready": False, "detail": store_detail(error)})
    return JSONResponse(content={"ready": True, "version": service.snapshot.model.info.version})


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(service: Service) -> Response:
    """Prometheus metrics."""
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)
