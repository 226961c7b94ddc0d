"""The OpenAPI document states every limit the service enforces, this deployment's included.

Limits fixed in code are in the schemas themselves (the time patterns, ``MAX_CANDLES``). Some depend on
the settings this service runs with: the page size of long reads, the batch size, the clock's top speed
and the feature window a forecast from candles needs. They are written into the document here, when it
is first built, so a client generated from it never sends a request the service then refuses as invalid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from btcmlops.features import get_feature_set
from btcmlops.settings import Settings


def state_limits(schema: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """``schema`` (an OpenAPI document of this service) with the settings' limits written in."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query" and parameter.get("name") == "limit":
                    parameter["schema"]["maximum"] = settings.serve.max_read_rows
    components = schema.get("components", {}).get("schemas", {})
    _property(components, "PredictionRequest", "candles")["minItems"] = get_feature_set(
        settings.model.feature_set
    ).window_hours
    _property(components, "BatchPredictionRequest", "timestamps")["maxItems"] = settings.serve.max_batch
    speed = _property(components, "ClockChange", "speed")
    for branch in speed.get("anyOf", [speed]):
        if branch.get("type") == "number":
            branch["maximum"] = min(branch.get("maximum", settings.clock.max_speed), settings.clock.max_speed)
    return schema


def _property(components: dict[str, Any], model: str, field: str) -> dict[str, Any]:
    found: dict[str, Any] = components[model]["properties"][field]
    return found


def with_stated_limits(app: FastAPI, settings: Settings) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` that builds the document once, as FastAPI does, with ``state_limits`` applied."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = state_limits(build(), settings)
        return app.openapi_schema

    return openapi
