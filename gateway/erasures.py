"""The erasure procedure's steps as the enforcement point takes them, for the HTTP routes
(``gateway/routes/erasure.py``) and the command line (``sijill rnp erasure``) alike: each call
is one policy decision appended to the audit log before the desk (``gateway/erasure``) changes
anything; the desk records that entry with the step it allowed. Refusals are
:class:`gateway.problems.Problem` values, which the routes answer and the CLI prints."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from gateway.auth import command_line_office
from gateway.authz import Enforcer, Outcome
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
from gateway.problems import Problem
from gateway.services import Services
from gateway.timefmt import rfc3339
from identity import PersonErased, UnknownPerson

__all__ = [
    "approve",
    "document",
    "get",
    "list_requests",
    "officer_enforcer",
    "refuse",
    "request",
]


def officer_enforcer(
    services: Services, action: str, *, client_id: str, officer: Mapping[str, str] | None
) -> Enforcer:
    """The enforcer of an office's step taken at the command line (``sijill rnp erasure``):
    the office client must be registered and enabled (:func:`command_line_office`), and the
    officer, when one acts, signs in as at the console (``officer``: username, password and
    TOTP code; LoginFailed otherwise). The policy then decides as it does over HTTP: an
    operator's shell names no one by itself, so a step that needs a named officer (four eyes)
    gets one only through their own credentials."""
    principal = command_line_office(services, client_id, None)
    if officer is not None:
        actor = services.oauth.staff("officer").authenticate(officer).subject
        principal = replace(principal, actor=actor)
    return Enforcer(services=services, principal=principal, action=action)


def _time(ns: int | None) -> str | None:
    return rfc3339(ns) if ns is not None else None


def document(request: ErasureRequest) -> dict[str, Any]:
    """The request as the API and the command line show it (RFC 3339 times)."""
    return {
        "id": request.id,
        "idcs": request.idcs,
        "ground": request.ground,
        "reference": request.reference,
        "statement": request.statement,
        "status": request.status,
        "requested_by": request.requested_by,
        "requested_at": rfc3339(request.requested_at_ns),
        "decided_by": request.decided_by,
        "decided_at": _time(request.decided_at_ns),
        "refusal_reason": request.refusal_reason,
        "carried_out_at": _time(request.carried_out_at_ns),
        "steps": [
            {
                "step": s.step,
                "done_at": rfc3339(s.done_at_ns),
                "count": s.count,
                "audit_index": s.audit_index,
            }
            for s in request.steps
        ],
    }


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


def _listing(enforcer: Enforcer) -> str:
    outcome = enforcer.decide(resource={"kind": "erasure_request"}, purpose=None)
    return outcome.require_allowed().decision_id


def request(
    enforcer: Enforcer, idcs: str, ground: Ground, reference: str, statement: str | None
) -> tuple[ErasureRequest, str]:
    """Open a request (``request_erasure``); the new request and the decision id."""
    outcome = enforcer.decide(
        resource={"kind": "erasure_request"},
        purpose=None,
        subject_tag=enforcer.subject_tag(idcs),
    ).require_allowed()
    desk = enforcer.services.erasures
    try:
        opened = desk.request(idcs, ground, reference, statement, _signed(enforcer, outcome))
    except (UnknownPerson, PersonErased, ErasurePending, InvalidErasure) as exc:
        raise _problem(exc) from None
    return opened, outcome.decision_id


def list_requests(enforcer: Enforcer, status: Status | None) -> tuple[list[ErasureRequest], str]:
    """The requests, newest first (``read_erasure_requests``)."""
    decision_id = _listing(enforcer)
    return enforcer.services.erasures.list(status=status), decision_id


def get(enforcer: Enforcer, request_id: str) -> tuple[ErasureRequest, str]:
    decision_id = _listing(enforcer)
    try:
        return enforcer.services.erasures.get(_checked_id(request_id)), decision_id
    except ErasureNotFound as exc:
        raise _problem(exc) from None


def _checked_id(request_id: str) -> str:
    try:
        return str(uuid.UUID(request_id))
    except ValueError:
        raise _problem(ErasureNotFound()) from None


def _decided(enforcer: Enforcer, request_id: str) -> tuple[Signed, str]:
    """An approval's or refusal's decision, about the request's person and its requester:
    the policy refuses the requester as approver (four eyes), answered as its own 403."""
    try:
        current = enforcer.services.erasures.get(_checked_id(request_id))
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
            "The officer who asked for this erasure cannot approve it; a second officer must.",
            decision_id=outcome.decision_id,
        )
    outcome.require_allowed()
    return _signed(enforcer, outcome), outcome.decision_id


def approve(enforcer: Enforcer, request_id: str) -> tuple[ErasureRequest, str]:
    """Approve and carry out (``approve_erasure``); again on a stopped carry-out finishes it."""
    signed, decision_id = _decided(enforcer, request_id)
    try:
        return enforcer.services.erasures.approve(request_id, signed), decision_id
    except (ErasureNotFound, ErasureStateError, ErasureIncomplete) as exc:
        raise _problem(exc) from None


def refuse(enforcer: Enforcer, request_id: str, reason: str) -> tuple[ErasureRequest, str]:
    signed, decision_id = _decided(enforcer, request_id)
    try:
        return enforcer.services.erasures.refuse(request_id, reason, signed), decision_id
    except (ErasureNotFound, ErasureStateError) as exc:
        raise _problem(exc) from None
