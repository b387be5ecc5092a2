"""Every route that could touch personal data goes through the policy decision (authorize),
or stands on the explicit public list (DESIGN.md "Policy decisions")."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from gateway.admission import authorize
from gateway.app import PUBLIC_ROUTES, iter_routes
from gateway.route_walk import unmediated_routes

authorize_dep = Depends(authorize("read_own_data", kinds=["citizen"]))


def test_every_route_is_public_or_mediated(app: FastAPI) -> None:
    assert unmediated_routes(iter_routes(app), PUBLIC_ROUTES) == []


def test_the_public_list_names_only_routes_that_exist(app: FastAPI) -> None:
    existing = {(m, r.path) for r in iter_routes(app) for m in getattr(r, "methods", ()) or ()}
    assert PUBLIC_ROUTES - existing == set()


def test_a_route_without_authorize_is_reported(app: FastAPI) -> None:
    @app.get("/v1/me/leak")
    def leak() -> dict[str, str]:
        return {}

    @app.get("/v1/me/fine")
    def fine(_=authorize_dep) -> dict[str, str]:  # type: ignore[no-untyped-def]
        return {}

    assert unmediated_routes(iter_routes(app), PUBLIC_ROUTES) == ["GET /v1/me/leak"]


def test_the_walk_finds_every_route_the_api_documents(app: FastAPI) -> None:
    # A router included beside gateway.app.ROUTERS would escape the walk; its routes are in
    # the OpenAPI document all the same.
    walked = {(m, r.path) for r in iter_routes(app) for m in getattr(r, "methods", ()) or ()}
    documented = {
        (method.upper(), path) for path, ops in app.openapi()["paths"].items() for method in ops
    }
    assert documented and documented - walked == set()
