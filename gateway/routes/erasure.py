"""The erasure procedure over HTTP (docs/privacy.md, "Erasure"; docs/rnp.md): a registration
office asks for a person's erasure on a legal ground, a second named officer approves it (four
eyes: never the requester) or refuses it, and the approval carries it out. Each call is one
policy decision appended to the audit log before anything changes; the desk records that
entry with the step it allowed, and each step of the carry-out has its own entry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from gateway.authz import Enforcer, Outcome, authorize
from gateway.erasure import (
    ErasureIncomplete,
    ErasureNotFound,
    ErasurePending,
    ErasureRequest,
    ErasureStateError,
    Ground,
    InvalidErasure,
    Signed,
    Status,
)
from gateway.problems import Problem, responses
from gateway.services import Services, get_services
from gateway.timefmt import rfc3339
from identity import PersonErased, UnknownPerson

router = APIRouter(
    prefix="/v1/rnp",
    tags=["registration offices"],
    responses=responses(400, 401, 403, 404, 408, 409, 413, 422, 503),
)
IdcsPath = Annotated[str, Path(pattern=r"^[2-9][0-9]{9}$", description="The person's IDCS")]
RequestId = Annotated[
    str,
    Path(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
]
AppServices = Annotated[Services, Depends(get_services)]


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


def _time(ns: int | None) -> str | None:
    return rfc3339(ns) if ns is not None else None


def _view(request: ErasureRequest, decision_id: str) -> ErasureOut:
    return ErasureOut(
        id=request.id,
        idcs=request.idcs,
        ground=request.ground,
        reference=request.reference,
        statement=request.statement,
        status=request.status,
        requested_by=request.requested_by,
        requested_at=rfc3339(request.requested_at_ns),
        decided_by=request.decided_by,
        decided_at=_time(request.decided_at_ns),
        refusal_reason=request.refusal_reason,
        carried_out_at=_time(request.carried_out_at_ns),
        steps=[
            StepOut(
                step=s.step, done_at=rfc3339(s.done_at_ns), count=s.count, audit_index=s.audit_index
            )
            for s in request.steps
        ],
        decision_id=decision_id,
    )


def _problem(exc: Exception) -> Problem:
    if isinstance(exc, UnknownPerson | PersonErased):
        return Problem(404, "not-found", "The register holds no such person.")
    if isinstance(exc, ErasureNotFound):
        return Problem(404, "erasure-not-found", str(exc))
    if isinstance(exc, ErasurePending):
        return Problem(409, "erasure-pending", str(exc))
    if isinstance(exc, ErasureStateError):
        return Problem(409, "erasure-state", str(exc), status_now=exc.status)
    if isinstance(exc, ErasureIncomplete):
        return Problem(503, "erasure-incomplete", str(exc), headers={"Retry-After": "5"})
    assert isinstance(exc, InvalidErasure)
    return Problem(422, exc.code, str(exc))


def _signed(enforcer: Enforcer, outcome: Outcome) -> Signed:
    return Signed(enforcer.actor(), enforcer.principal.actor or "", outcome.receipt.index)


def _decided(
    enforcer: Enforcer, services: Services, request_id: str
) -> tuple[ErasureRequest, Signed, str]:
    """An approval's or refusal's decision, about the request's person and its requester."""
    try:
        current = services.erasures.get(request_id)
    except ErasureNotFound as exc:
        raise _problem(exc) from None
    outcome = enforcer.decide(
        resource={"kind": "erasure_request", "requested_by": current.requester_officer},
        purpose=None,
        subject_tag=enforcer.subject_tag(current.idcs),
    )
    if not outcome.allowed and "four_eyes_required" in outcome.result.reasons:
        raise Problem(
            403,
            "four-eyes",
            "The officer who asked for this erasure cannot decide it; a second officer must.",
            decision_id=outcome.decision_id,
        )
    outcome.require_allowed()
    return current, _signed(enforcer, outcome), outcome.decision_id


@router.post(
    "/persons/{idcs}/erasure",
    status_code=201,
    response_model=ErasureOut,
    summary="Ask for the erasure of a person (a second officer approves it)",
)
def request_erasure(
    idcs: IdcsPath,
    body: ErasureIn,
    services: AppServices,
    enforcer: Enforcer = Depends(authorize("request_erasure", kinds=["office"])),
) -> ErasureOut:
    outcome = enforcer.decide(
        resource={"kind": "erasure_request"},
        purpose=None,
        subject_tag=enforcer.subject_tag(idcs),
    ).require_allowed()
    try:
        request = services.erasures.request(
            idcs, body.ground, body.reference, body.statement, _signed(enforcer, outcome)
        )
    except (UnknownPerson, PersonErased, ErasurePending, InvalidErasure) as exc:
        raise _problem(exc) from None
    return _view(request, outcome.decision_id)


@router.get("/erasure-requests", response_model=ErasureList, summary="The erasure requests")
def list_erasures(
    services: AppServices,
    enforcer: Enforcer = Depends(authorize("read_erasure_requests", kinds=["office"])),
    status: Annotated[Status | None, Query(description="Only requests in this status")] = None,
) -> ErasureList:
    outcome = enforcer.decide(resource={"kind": "erasure_request"}, purpose=None)
    outcome.require_allowed()
    chosen = services.erasures.list(status=status)
    return ErasureList(
        items=[_view(r, outcome.decision_id) for r in chosen], decision_id=outcome.decision_id
    )


@router.get(
    "/erasure-requests/{request_id}",
    response_model=ErasureOut,
    summary="One erasure request and the steps of its carry-out",
)
def get_erasure(
    request_id: RequestId,
    services: AppServices,
    enforcer: Enforcer = Depends(authorize("read_erasure_requests", kinds=["office"])),
) -> ErasureOut:
    outcome = enforcer.decide(resource={"kind": "erasure_request"}, purpose=None)
    outcome.require_allowed()
    try:
        request = services.erasures.get(request_id)
    except ErasureNotFound as exc:
        raise _problem(exc) from None
    return _view(request, outcome.decision_id)


@router.post(
    "/erasure-requests/{request_id}/approve",
    response_model=ErasureOut,
    summary="Approve an erasure (not its requester) and carry it out",
)
def approve_erasure(
    request_id: RequestId,
    services: AppServices,
    enforcer: Enforcer = Depends(authorize("approve_erasure", kinds=["office"])),
) -> ErasureOut:
    _current, signed, decision_id = _decided(enforcer, services, request_id)
    try:
        request = services.erasures.approve(request_id, signed)
    except (ErasureNotFound, ErasureStateError, ErasureIncomplete) as exc:
        raise _problem(exc) from None
    return _view(request, decision_id)


@router.post(
    "/erasure-requests/{request_id}/refuse",
    response_model=ErasureOut,
    summary="Refuse an erasure request, with the reason",
)
def refuse_erasure(
    request_id: RequestId,
    body: RefusalIn,
    services: AppServices,
    enforcer: Enforcer = Depends(authorize("refuse_erasure", kinds=["office"])),
) -> ErasureOut:
    _current, signed, decision_id = _decided(enforcer, services, request_id)
    try:
        request = services.erasures.refuse(request_id, body.reason, signed)
    except (ErasureNotFound, ErasureStateError) as exc:
        raise _problem(exc) from None
    return _view(request, decision_id)
