"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gateway import __version__, problems
from gateway.middleware import Metrics, RequestContext
from gateway.routes import health
from gateway.services import Services, build_services
from gateway.settings import Settings, load_settings

# Routes that touch no personal data and need no policy decision; every other route must be
# mediated by gateway.authz (a test walks the app and holds this list to that).
PUBLIC_ROUTES: set[tuple[str, str]] = {
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"),
    ("GET", "/docs"), ("GET", "/docs/oauth2-redirect"), ("GET", "/openapi.json"),
    ("GET", "/redoc"),
}


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    settings = settings or load_settings()
    services = services or build_services(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        services.close()

    app = FastAPI(title="Sijill", version=__version__, lifespan=lifespan,
                  description="Privacy-first identity and consent gateway for the national "
                  "population and social registers.")
    app.state.settings = settings
    app.state.services = services
    app.state.metrics = Metrics()
    problems.install(app)
    app.include_router(health.router)
    app.add_middleware(RequestContext, router=app.router, metrics=app.state.metrics)
    return app
