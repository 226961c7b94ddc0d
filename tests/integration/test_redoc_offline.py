"""/redoc in Debian's Chromium: the page loads and renders with nothing fetched from another host.

The service runs for real (uvicorn on a port, SQLite stores, no champion needed to document the API);
every request the browser makes is recorded, a CSP-blocked one included.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import uvicorn

from btcmlops.serving import create_app
from btcmlops.serving.redoc import REDOC_BUNDLE_URL
from btcmlops.settings import Settings
from services import chromium_browser, free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def service_url(tmp_path: Path) -> Iterator[str]:
    """The inference service on 127.0.0.1, stores in ``tmp_path`` (empty registry: docs only)."""
    settings = Settings(
        home=tmp_path,
        store={"url": f"sqlite:///{tmp_path / 'prices.db'}"},
        mlflow={"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "the service did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_redoc_renders_and_asks_no_other_host(service_url: str) -> None:
    asked: list[str] = []
    refused: list[str] = []
    with chromium_browser() as browser:
        page = browser.new_page()
        page.on("request", lambda request: asked.append(request.url))
        page.on("console", lambda message: refused.append(message.text) if message.type == "error" else None)
        page.goto(f"{service_url}/redoc", wait_until="networkidle")
        page.get_by_text("API docs by Redocly").wait_for(timeout=30_000)  # ReDoc has rendered the spec
        page.get_by_role("heading", name="btcmlops inference service").first.wait_for(timeout=30_000)
        page.wait_for_load_state("networkidle")
    own = urlsplit(service_url).netloc
    elsewhere = [
        url for url in asked if urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc != own
    ]
    assert elsewhere == [], elsewhere  # the shipped bundle asks cdn.redoc.ly for its logo
    assert f"{service_url}{REDOC_BUNDLE_URL}" in asked
    assert f"{service_url}/openapi.json" in asked
