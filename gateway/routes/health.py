"""Operator endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.problems import problem_response, responses
from gateway.services import Services, get_services

router = APIRouter(tags=["operations"])
log = logging.getLogger("sijill.health")


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: databases, policy engine and key provider reachable",
    responses=responses(503),
)
def readyz(request: Request, services: Services = Depends(get_services)) -> Response:
    failing = []
    for name, check in services.readiness.items():
        try:
            check()
        except Exception as exc:
            log.warning(
                "readiness check failed", extra={"check": name, "error_class": type(exc).__name__}
            )
            failing.append(name)
    if failing:
        return problem_response(
            503,
            "not-ready",
            "Not ready",
            "Unreachable: " + ", ".join(failing) + ".",
            instance=request.url.path,
            unavailable=failing,
        )
    return JSONResponse({"status": "ready", "checks": sorted(services.readiness)})


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
