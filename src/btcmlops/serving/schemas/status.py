"""Why a request was not answered, and whether the service is ready."""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    Field,
)


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
