"""Rectification requests (Law 09.08 art. 8): the citizen asks (``/v1/me``), the office's
queue answers (``/v1/rnp/rectification-requests``). The work is gateway/rectification.py's;
these routes parse and map."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from gateway.admission import authorize
from gateway.authz import Enforcer
from gateway.problems import responses
from gateway.rectification import (
    PersonChanges,
    accept_request,
    my_requests,
    open_request,
    refuse_request,
    request_queue,
    submit_request,
)
from gateway.services import Services, get_services
from gateway.timefmt import public_times
from identity import RectificationRequest
from identity.rectification import RECTIFICATION_PERIOD_DAYS, RequestStatus

citizen_router = APIRouter(
    prefix="/v1/me",
    tags=["citizens"],
    responses=responses(400, 401, 403, 404, 408, 413, 422, 503),
)
office_router = APIRouter(
    prefix="/v1/rnp/rectification-requests",
    tags=["registration offices"],
    responses=responses(400, 401, 403, 404, 408, 409, 413, 422, 503),
)
RequestId = Annotated[
    str,
    Path(
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        description="The request's id",
    ),
]
_LAW = (
    "Law 09.08 art. 8: the office rectifies free of charge within "
    f"{RECTIFICATION_PERIOD_DAYS} clear days, or tells you why it refuses."
)


class RectificationRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    changes: PersonChanges = Field(description="The fields to correct and their right values")
    statement: str = Field(min_length=1, max_length=2000, description="Why they are wrong")


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


def _view(request: RectificationRequest) -> dict[str, Any]:
    return public_times(request.as_public())


# -- the citizen ---------------------------------------------------------------------------------


@citizen_router.post(
    "/rectification-requests",
    status_code=201,
    summary="Ask the office to correct fields of my record",
)
def request_rectification(
    body: RectificationRequestIn,
    enforcer: Enforcer = Depends(authorize("request_rectification", kinds=["citizen"])),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    request = submit_request(services, enforcer, body.changes, body.statement)
    return {**_view(request), "reason": None, "law": _LAW}


@citizen_router.get(
    "/rectification-requests",
    summary="My rectification requests: status and, when refused, the reason",
)
def list_my_requests(
    enforcer: Enforcer = Depends(authorize("request_rectification", kinds=["citizen"])),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    return {"items": [public_times(r) for r in my_requests(services, enforcer)], "law": _LAW}


# -- the office ----------------------------------------------------------------------------------


@office_router.get("", summary="The queue of rectification requests (names, dates; no value)")
def queue(
    status: Annotated[RequestStatus | None, Query()] = "pending",
    enforcer: Enforcer = Depends(authorize("list_rectification_requests", kinds=["office"])),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    found = request_queue(services, enforcer, status)
    return {"items": [{**_view(r), "idcs": r.idcs} for r in found]}


@office_router.get("/{request_id}", summary="One request with its proposed values and statement")
def get_request(
    request_id: RequestId,
    enforcer: Enforcer = Depends(authorize("open_rectification_request", kinds=["office"])),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    request, contents, decision_id = open_request(services, enforcer, request_id)
    return {**_view(request), "idcs": request.idcs, **contents, "decision_id": decision_id}


@office_router.post(
    "/{request_id}/accept",
    summary="Apply the request as PATCH /v1/rnp/persons/{idcs} does; links the new version",
)
def accept(
    request_id: RequestId,
    enforcer: Enforcer = Depends(authorize("decide_rectification_request", kinds=["office"])),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    closed, done = accept_request(services, enforcer, request_id)
    return {
        **_view(closed),
        "idcs": closed.idcs,
        "person_status": done.status,
        "decision_id": done.decision_id,
    }


@office_router.post("/{request_id}/refuse", summary="Refuse the request, with a reason")
def refuse(
    request_id: RequestId,
    body: ReasonIn,
    enforcer: Enforcer = Depends(authorize("decide_rectification_request", kinds=["office"])),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    closed, decision_id = refuse_request(services, enforcer, request_id, body.reason)
    return {**_view(closed), "idcs": closed.idcs, "decision_id": decision_id}
