"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from starlette.routing import BaseRoute, Mount, Route

from gateway import __version__, problems
from gateway.keys import audit_alarm
from gateway.lifecycle import record_policy_revision, report_policy_engine, start_audit
from gateway.middleware import BoundedBody, RequestContext
from gateway.notify.delivery import notifications_job
from gateway.routes import activation as activation_routes
from gateway.routes import agency as agency_routes
from gateway.routes import agency_batch as agency_batch_routes
from gateway.routes import audit as audit_routes
from gateway.routes import breaches as breach_routes
from gateway.routes import court_orders as court_order_routes
from gateway.routes import docs as docs_routes
from gateway.routes import erasure as erasure_routes
from gateway.routes import export as export_routes
from gateway.routes import health
from gateway.routes import me as me_routes
from gateway.routes import me_household as me_household_routes
from gateway.routes import notifications as notification_routes
from gateway.routes import oauth as oauth_routes
from gateway.routes import rectification as rectification_routes
from gateway.routes import registry as registry_routes
from gateway.routes import reviews as review_routes
from gateway.routes import rnp as rnp_routes
from gateway.routes import rsu as rsu_routes
from gateway.routes import userinfo as userinfo_routes
from gateway.services import Services, build_services
from gateway.settings import Settings, load_settings
from gateway.web.app import mount_web
from gateway.witnessing import witness_app

# Routes that touch no personal data and need no policy decision; every other route must be
# mediated by gateway.authz (a test walks the app and holds this list to that).
PUBLIC_ROUTES: set[tuple[str, str]] = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/openapi.json"),
    ("GET", "/redoc"),
    # OAuth/OIDC: the authorization server's own endpoints. They authenticate the client
    # (private_key_jwt) or the person (sign-in) themselves and return no register data; they
    # are where a principal comes from, so no policy decision can precede them.
    ("GET", "/oauth/jwks"),
    ("GET", "/.well-known/oauth-authorization-server"),
    ("GET", "/.well-known/openid-configuration"),
    ("POST", "/oauth/token"),
    ("POST", "/oauth/introspect"),
    ("POST", "/oauth/revoke"),
    ("GET", "/oauth/authorize"),
    ("POST", "/oauth/authorize"),
    ("GET", "/oauth/logout"),
    ("POST", "/oauth/logout"),
    # UserInfo authenticates the citizen's token itself and answers the token's own subject,
    # never register data (OIDC Core §5.3).
    ("GET", "/oauth/userinfo"),
    ("POST", "/oauth/userinfo"),
    # Audit log transparency: signed tree heads, the key that verifies them and consistency
    # proofs are hashes and sizes only, published so anyone can hold the log to its history.
    ("GET", "/v1/audit/checkpoint"),
    ("GET", "/v1/audit/verifier-key"),
    ("GET", "/v1/audit/proofs/consistency"),
    # An inclusion proof is hashes only: a leaf hash (of an entry holding a random decision id
    # and a nanosecond time, so it cannot be guessed back) and its audit path. Public like
    # consistency proofs, so that a citizen or witness checks a receipt's entry against any
    # checkpoint without an account.
    ("GET", "/v1/audit/proofs/inclusion"),
    # The processing registry: the CNDP declarations, public by law.
    ("GET", "/v1/registry/purposes"),
}


# Routes that take many records in one body get the bulk limit (SIJILL_MAX_BULK_BODY_BYTES);
# every other route the JSON API's (SIJILL_MAX_BODY_BYTES).
BULK_ROUTES: set[tuple[str, str]] = {
    ("POST", "/v1/rsu/households"),
    ("POST", "/v1/agency/pseudonyms/translate"),
    ("POST", "/v1/agency/batch/query"),
    ("POST", "/v1/agency/batch/eligibility"),
}


# The JSON API's routers, included as they are: each carries its own prefix, so a route's
# path in its router is its path in the app. A new router is added here, which puts it both
# in the app and in the route walk (tests/gateway/test_route_walk.py).
ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    docs_routes.router,
    audit_routes.router,
    oauth_routes.router,
    userinfo_routes.router,
    agency_routes.router,
    agency_batch_routes.router,
    me_routes.router,
    export_routes.router,
    me_household_routes.router,
    notification_routes.router,
    rnp_routes.router,
    rectification_routes.citizen_router,
    rectification_routes.office_router,
    review_routes.router,
    review_routes.citizen_router,
    registry_routes.router,
    rsu_routes.router,
    breach_routes.router,
    court_order_routes.router,
    court_order_routes.queries,
    erasure_routes.router,
    activation_routes.router,
)


def iter_routes(app: FastAPI) -> Iterator[BaseRoute]:
    """Every route of the app with its full path: those declared on the app itself, then each
    of :data:`ROUTERS`' (the public ``routes`` of the app and of each router; FastAPI keeps an
    included router as one entry of ``app.routes``)."""
    for route in app.routes:
        if isinstance(route, APIRoute | Route | Mount):
            yield route
    for router in ROUTERS:
        yield from router.routes


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    settings = settings or load_settings()
    services = services or build_services(settings)
    # Citizens' notifications: delivered by a scheduled job (gateway/notify/delivery.py), which
    # reads addresses through the enforcement point and so cannot be built inside services.py.
    if not any(job.name == "notifications" for job in services.jobs):
        services.jobs.append(notifications_job(services))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Requests run in this many threads at once; more only fight over the GIL.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
        start_audit(services)
        report_policy_engine(services)
        record_policy_revision(services)
        services.checkpointer.start()
        for job in services.jobs:
            job.start()
        yield
        for job in services.jobs:
            job.stop()
        services.security_events.flush(final=True)  # what this process counted, summarised
        services.checkpointer.stop()  # signs the tail: a clean stop leaves none unsigned
        services.close()

    # Swagger UI and ReDoc are served from the pinned fastapi-offline package, not a CDN:
    # government networks are often closed to the internet.
    app = FastAPIOffline(
        static_url=docs_routes.DOCS_ASSETS,
        redoc_url=None,
        title="Sijill",
        version=__version__,
        lifespan=lifespan,
        description="Privacy-first identity and consent gateway for the national "
        "population and social registers.",
    )
    app.state.settings = settings
    app.state.services = services
    app.state.metrics = services.metrics
    metrics = app.state.metrics

    def alarm(problem: str) -> None:
        audit_alarm(problem)
        metrics.audit_alarms.inc()

    services.audit.alarm = alarm
    if services.checkpointer.witnesses is not None:
        services.checkpointer.witnesses.alarm = alarm
    if services.witness is not None:
        app.mount("/witness", witness_app(services.witness))
    problems.install(app)
    for router in ROUTERS:
        app.include_router(router)
    mount_web(app, services)

    def body_limit(method: str, path: str) -> int:
        if (method, path) in BULK_ROUTES:
            return settings.max_bulk_body_bytes
        return settings.max_body_bytes

    app.add_middleware(
        BoundedBody, limit_for=body_limit, read_timeout_s=settings.body_read_timeout_s
    )
    app.add_middleware(RequestContext, metrics=app.state.metrics)
    return app
