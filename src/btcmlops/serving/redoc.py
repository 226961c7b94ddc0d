"""/redoc that works on a closed network, as /docs does: nothing is fetched from another host.

fastapi-offline serves ReDoc's bundle locally and turns Google Fonts off, but the bundle itself shows an
"API docs by Redocly" logo loaded from cdn.redoc.ly, whatever ReDoc's options: on a demo laptop or a
locked-down cluster, one DNS lookup and a failed request per page view. Here /redoc loads a copy of the
shipped bundle without that address (the image, left without a source, hides itself), and the page
carries a Content-Security-Policy that keeps images, fonts and fetches on this host should a later
ReDoc ask for something else.
"""

from __future__ import annotations

import functools
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse

DOCS_ASSETS = "/docs/assets"
"""Where fastapi-offline serves Swagger UI's and ReDoc's files."""
REDOC_BUNDLE_URL = "/docs/redoc.standalone.js"
"""The bundle /redoc loads: the shipped one, less the CDN logo (outside the assets mount, which would
answer first)."""
SHIPPED_BUNDLE = Path(fastapi_offline.__file__).parent / "static" / "redoc.standalone.js"
CDN_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
REDOC_POLICY = "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:"
"""/redoc's Content-Security-Policy: images, fonts and fetches from this service only."""


@functools.cache
def offline_bundle() -> bytes:
    """ReDoc's shipped bundle with the logo's CDN address removed (read once, ~1 MB)."""
    return SHIPPED_BUNDLE.read_bytes().replace(CDN_LOGO, b"")


async def redoc_page(request: Request) -> HTMLResponse:
    """ReDoc over this service's OpenAPI document, with no Google Fonts and the offline bundle."""
    root = request.scope.get("root_path", "")
    page = get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}{REDOC_BUNDLE_URL}",
        redoc_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
        with_google_fonts=False,
    )
    page.headers["Content-Security-Policy"] = REDOC_POLICY
    return page


async def redoc_bundle() -> Response:
    """The offline bundle, cacheable for a day like the other doc assets a browser keeps."""
    return Response(
        offline_bundle(), media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"}
    )


def add_offline_redoc(app: FastAPI) -> None:
    """Route /redoc and its bundle on ``app`` (made with ``FastAPIOffline(redoc_url=None)``)."""
    app.get("/redoc", include_in_schema=False)(redoc_page)
    app.get(REDOC_BUNDLE_URL, include_in_schema=False)(redoc_bundle)
