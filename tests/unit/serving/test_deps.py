"""The control key, as a dependency: 403 while no key is configured, 401 for a wrong one, before the body."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from btcmlops.serving.deps import ControlKey, get_settings
from btcmlops.serving.errors import add_error_handlers
from btcmlops.settings import Settings

KEY = "a-control-key"


class _Change(BaseModel):
    reason: str


def _app(api_key: str | None) -> FastAPI:
    app = FastAPI()

    @app.post("/change", dependencies=[ControlKey])
    async def change(body: _Change) -> dict[str, str]:
        return {"changed": body.reason}

    add_error_handlers(app)
    app.dependency_overrides[get_settings] = lambda: Settings(serve={"control_key": api_key})
    return app


@pytest.mark.parametrize(
    ("configured", "sent", "status"),
    [(None, KEY, 403), (KEY, None, 401), (KEY, "wrong", 401), (KEY, KEY, 200)],
)
def test_a_change_needs_the_configured_key(configured: str | None, sent: str | None, status: int) -> None:
    headers = {"X-API-Key": sent} if sent else {}
    with TestClient(_app(configured)) as client:
        response = client.post("/change", json={"reason": "why"}, headers=headers)
    assert response.status_code == status, response.text


def test_without_the_key_the_body_is_not_even_read() -> None:
    """An invalid body without the key is a 401: the caller learns nothing of what a change takes."""
    with TestClient(_app(KEY)) as client:
        assert client.post("/change", json={"nope": 1}).status_code == 401
        assert client.post("/change", json={"nope": 1}, headers={"X-API-Key": KEY}).status_code == 422
