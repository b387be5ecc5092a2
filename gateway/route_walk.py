"""The route walk: every route of the app is public or goes through the enforcement point.

A route is mediated when its dependency tree holds an :func:`gateway.admission.authorize`
dependency (marked with :data:`gateway.admission.MEDIATED_ATTR`); the test of the app walks every
route with :func:`unmediated_routes`, so that a route added without the policy cannot ship.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi.dependencies.models import Dependant
from starlette.routing import BaseRoute

from gateway.admission import MEDIATED_ATTR


def is_mediated(dependant: Dependant) -> bool:
    """Whether a route's dependency tree contains an :func:`authorize` dependency."""
    stack = [dependant]
    while stack:
        current = stack.pop()
        if getattr(current.call, MEDIATED_ATTR, None) is not None:
            return True
        stack.extend(current.dependencies)
    return False


def unmediated_routes(routes: Iterable[BaseRoute], public: set[tuple[str, str]]) -> list[str]:
    """``METHOD path`` of every route that is neither public nor goes through the policy."""
    missing = []
    for route in routes:
        methods = sorted(getattr(route, "methods", None) or ())
        path = getattr(route, "path", "?")
        for method in methods:
            if method == "HEAD" or (method, path) in public:
                continue
            dependant = getattr(route, "dependant", None)
            if dependant is None or not is_mediated(dependant):
                missing.append(f"{method} {path}")
    return missing
