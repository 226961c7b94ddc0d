"""Drift, read (``/drift``): each model feature's PSI, last 7 sim days against the champion's training window.

A read of the last reading the live scorer's thread made (``serving.drift``): no computation here.
"""

from __future__ import annotations

from fastapi import APIRouter

from btcmlops.features.drift import MODERATE_PSI, drift_status, worst_status
from btcmlops.serving.deps import AppSettings, Service
from btcmlops.serving.drift import DRIFT_WINDOW_LABEL
from btcmlops.serving.schemas import DriftPublic, DriftWindowPublic, FeatureDriftPublic

router = APIRouter(tags=["read"])


@router.get("/drift", response_model=DriftPublic)
async def drift(service: Service, settings: AppSettings) -> DriftPublic:
    """Each feature's Population Stability Index over the last 7 sim days against the serving
    champion's training window, and what it reads as (docs/monitoring.md, "Drift")."""
    threshold = settings.serve.drift_psi_threshold
    reading = service.drift.reading
    if reading is None:
        return DriftPublic(
            model_version=None,
            window=DRIFT_WINDOW_LABEL,
            threshold=threshold,
            moderate_threshold=MODERATE_PSI,
            status=None,
            reference=None,
            current=None,
            features=[],
        )
    statuses = {feature: drift_status(psi, threshold) for feature, psi in reading.psi.items()}
    return DriftPublic(
        model_version=reading.model_version,
        window=DRIFT_WINDOW_LABEL,
        threshold=threshold,
        moderate_threshold=MODERATE_PSI,
        status=worst_status(statuses),
        reference=DriftWindowPublic(
            start=reading.reference_start, end=reading.reference_end, hours=reading.reference_hours
        ),
        current=DriftWindowPublic(
            start=reading.current_start, end=reading.current_end, hours=reading.current_hours
        ),
        features=[
            FeatureDriftPublic(feature=feature, psi=psi, status=statuses[feature])
            for feature, psi in reading.psi.items()
        ],
    )
