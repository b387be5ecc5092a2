"""Every route that could touch personal data goes through the policy decision (authorize),
or stands on the explicit public list (DESIGN.md "Policy decisions")."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from gateway.app import PUBLIC_ROUTES, iter_routes
from gateway.authz import authorize, unmediated_routes

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
