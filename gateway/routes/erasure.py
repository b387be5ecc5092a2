"""The erasure procedure over HTTP (docs/privacy.md, "Erasure"; docs/rnp.md): a registration
office asks for a person's erasure on a legal ground, a second named officer approves it (four
eyes: never the requester) or refuses it, and the approval carries it out. The decisions and
the desk's steps are ``gateway/erasures.py``'s, shared with ``sijill rnp erasure``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from gateway import erasures
from gateway.admission import authorize
from gateway.authz import Enforcer
from gateway.erasure import ErasureRequest, Ground, Status
from gateway.params import IdcsPath
from gateway.problems import responses

router = APIRouter(
    prefix="/v1/rnp",
    tags=["registration offices"],
    responses=responses(400, 401, 403, 404, 408, 409, 413, 422, 503),
)
RequestId = Annotated[
    str,
    Path(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
]


class ErasureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ground: Ground = Field(
        description="court_order, duplicate_enrolment (Law 72.18 art. 8) or "
        "death_after_retention (the register's retention after a death)"
    )
    reference: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        description="The court order's number, or the IDCS kept for a duplicate enrolment"
    )
    statement: Annotated[str, Field(max_length=4000)] | None = None


class RefusalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, Field(min_length=1, max_length=4000)]


class StepOut(BaseModel):
    step: str = Field(description="register, household, consents or sign_in")
    done_at: str = Field(description="RFC 3339, UTC")
    count: int = Field(description="How many items the step removed")
    audit_index: int = Field(description="The audit entry that recorded the step")


class ErasureOut(BaseModel):
    id: str
    idcs: str
    ground: Ground
    reference: str
    statement: str | None
    status: Status
    requested_by: str = Field(description="The office client and officer, as the audit log has it")
    requested_at: str
    decided_by: str | None
    decided_at: str | None
    refusal_reason: str | None
    carried_out_at: str | None
    steps: list[StepOut] = Field(description="The carry-out's steps done, in order")
    decision_id: str = Field(description="The policy decision behind this answer")


class ErasureList(BaseModel):
    items: list[ErasureOut]
    decision_id: str


def _view(request: ErasureRequest, decision_id: str) -> ErasureOut:
    return ErasureOut.model_validate({**erasures.document(request), "decision_id": decision_id})


@router.post(
    "/persons/{idcs}/erasure",
    status_code=201,
    response_model=ErasureOut,
    summary="Ask for the erasure of a person (a second officer approves it)",
)
def request_erasure(
    idcs: IdcsPath,
    body: ErasureIn,
    enforcer: Enforcer = Depends(authorize("request_erasure", kinds=["office"])),
) -> ErasureOut:
    opened, decision_id = erasures.request(
        enforcer, idcs, body.ground, body.reference, body.statement
    )
    return _view(opened, decision_id)


@router.get("/erasure-requests", response_model=ErasureList, summary="The erasure requests")
def list_erasures(
    enforcer: Enforcer = Depends(authorize("read_erasure_requests", kinds=["office"])),
    status: Annotated[Status | None, Query(description="Only requests in this status")] = None,
) -> ErasureList:
    chosen, decision_id = erasures.list_requests(enforcer, status)
    return ErasureList(items=[_view(r, decision_id) for r in chosen], decision_id=decision_id)


@router.get(
    "/erasure-requests/{request_id}",
    response_model=ErasureOut,
    summary="One erasure request and the steps of its carry-out",
)
def get_erasure(
    request_id: RequestId,
    enforcer: Enforcer = Depends(authorize("read_erasure_requests", kinds=["office"])),
) -> ErasureOut:
    return _view(*erasures.get(enforcer, request_id))


@router.post(
    "/erasure-requests/{request_id}/approve",
    response_model=ErasureOut,
    summary="Approve an erasure (not its requester) and carry it out",
)
def approve_erasure(
    request_id: RequestId,
    enforcer: Enforcer = Depends(authorize("approve_erasure", kinds=["office"])),
) -> ErasureOut:
    return _view(*erasures.approve(enforcer, request_id))


@router.post(
    "/erasure-requests/{request_id}/refuse",
    response_model=ErasureOut,
    summary="Refuse an erasure request, with the reason",
)
def refuse_erasure(
    request_id: RequestId,
    body: RefusalIn,
    enforcer: Enforcer = Depends(authorize("refuse_erasure", kinds=["office"])),
) -> ErasureOut:
    return _view(*erasures.refuse(enforcer, request_id, body.reason))
