"""Monitoring, read (``/monitoring/scores``, ``/alerts``): the live record and what is alerting.

The live scores are the ones ``/metrics`` exports, as JSON for the dashboard; the alerts are
Prometheus's, relayed, because the rules live there (deploy/prometheus/rules) and are evaluated
nowhere else: the service does not judge its own alerts a second time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from fastapi import APIRouter

from btcmlops.contest.scoring import skill
from btcmlops.redaction import describe_error, redact
from btcmlops.serving.deps import AppSettings, Service
from btcmlops.serving.errors import ApiError, documented
from btcmlops.serving.live_scores import WindowScores, window_scores
from btcmlops.serving.schemas import AlertPublic, AlertsPublic, LiveScoresPublic, LiveWindowScoresPublic

router = APIRouter(tags=["monitoring"])


@router.get("/monitoring/scores", response_model=LiveScoresPublic)
def live_scores(service: Service) -> LiveScoresPublic:
    """Each version's live error, coverage and interval score over the last 7 sim days, beside naive's."""
    end = service.window_end()
    windows = [] if end is None else window_scores(service.live_scores.tallies, end)
    return LiveScoresPublic(
        window="7d",
        window_end=end,
        interval_level=service.interval_level(),
        scores=[_public(window) for window in windows],
    )


def _public(window: WindowScores) -> LiveWindowScoresPublic:
    means = window.means

    def skill_of(score: str, naive: str) -> float | None:
        return skill(means[score], means[naive]) if means and means[naive] > 0 else None

    return LiveWindowScoresPublic(
        model_version=window.model_version,
        role=window.role,
        scored_hours=window.scored_hours,
        mean_absolute_error_usdt=means.get("absolute_error_usdt"),
        naive_mean_absolute_error_usdt=means.get("naive_absolute_error_usdt"),
        skill=skill_of("absolute_error_usdt", "naive_absolute_error_usdt"),
        coverage=means.get("coverage_ratio"),
        interval_score_usdt=means.get("interval_score_usdt"),
        naive_interval_score_usdt=means.get("naive_interval_score_usdt"),
        interval_skill=skill_of("interval_score_usdt", "naive_interval_score_usdt"),
    )


@router.get(
    "/alerts",
    response_model=AlertsPublic,
    responses=documented(
        503, why={503: "The configured Prometheus cannot be reached, or answered with an error"}
    ),
)
async def alerts(settings: AppSettings) -> AlertsPublic:
    """The alerts pending or firing in the Prometheus that evaluates the project's rules."""
    url = settings.serve.prometheus_url
    if url is None:
        return AlertsPublic(configured=False, source=None, alerts=[])
    source = redact(url.rstrip("/"))
    try:
        async with httpx.AsyncClient(timeout=settings.serve.prometheus_timeout_s) as client:
            response = await client.get(f"{url.rstrip('/')}/api/v1/alerts")
            response.raise_for_status()
            body = response.json()
    except (httpx.HTTPError, ValueError) as error:
        raise ApiError(503, f"Prometheus at {source} did not answer: {describe_error(error)}") from error
    return AlertsPublic(
        configured=True,
        source=source,
        alerts=sorted(
            (_alert(alert) for alert in body.get("data", {}).get("alerts", [])),
            key=lambda alert: (alert.state != "firing", alert.name, sorted(alert.labels.items())),
        ),
    )


def _alert(alert: dict[str, Any]) -> AlertPublic:
    """One alert of Prometheus's ``/api/v1/alerts`` answer, in this API's words."""
    labels: dict[str, str] = dict(alert.get("labels", {}))
    annotations: dict[str, str] = alert.get("annotations", {})
    active_at = alert.get("activeAt")
    value = alert.get("value")
    return AlertPublic(
        name=labels.pop("alertname", "?"),
        state=alert.get("state", "firing"),
        severity=labels.pop("severity", None),
        summary=annotations.get("summary"),
        labels=labels,
        active_at=datetime.fromisoformat(active_at.replace("Z", "+00:00")) if active_at else None,
        value=float(value) if value is not None else None,
    )
