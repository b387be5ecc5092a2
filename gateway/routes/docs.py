"""ReDoc, served from the pinned fastapi-offline assets with a policy that keeps it offline.

Swagger UI (``/docs``) asks for nothing beyond the gateway. ReDoc's bundle always shows a
logo fetched from its vendor's CDN; the Content-Security-Policy keeps the reader's browser
from announcing to a third party that someone reads our API documentation.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse

DOCS_ASSETS = "/docs/assets"
REDOC_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "worker-src 'self' blob:; frame-ancestors 'none'"
)

router = APIRouter(include_in_schema=False)


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    page = get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}{DOCS_ASSETS}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
        with_google_fonts=False,
    )
    page.headers["Content-Security-Policy"] = REDOC_CSP
    return page
