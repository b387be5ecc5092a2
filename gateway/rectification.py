"""Rectification of a person's RNP record (Law 09.08 art. 8), one path for both ways in: an
office's own ``PATCH /v1/rnp/persons/{idcs}`` and a citizen's request that an officer accepts
(``POST /v1/rnp/rectification-requests/{id}/accept``). Both call :func:`rectify_person`, so a
request is applied exactly as a registration office's correction is (validated whole, a new
version, the previous one kept until its retention).

The request's proposed values and statement, and a refusal's reason, are read and written
only under a decision of the enforcement point (the vault keeps them,
identity/rectification.py); the routes map.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.authz import Enforcer, Outcome
from gateway.problems import Problem
from gateway.services import Services
from identity import (
    DuplicatePerson,
    PersonErased,
    PersonIn,
    RectificationRequest,
    RequestDecided,
    StaleVersion,
    UnknownPerson,
    UnknownRequest,
)
from identity.rectification import RequestStatus
from vault import InvalidRecord
from vault.schema import PERSON

__all__ = [
    "PersonChanges",
    "Rectification",
    "RectifiedPerson",
    "accept_request",
    "duplicate_person",
    "my_requests",
    "open_request",
    "rectify_person",
    "refuse_request",
    "request_queue",
    "submit_request",
]

# What the vault holds of a request (vault/schema.py RECTIFICATION_REQUEST).
REQUEST_FIELDS = ("proposed", "statement")


class PersonChanges(BaseModel):
    """The fields to correct; the others keep their current value."""

    model_config = ConfigDict(extra="forbid")
    given_name_ar: str | None = None
    family_name_ar: str | None = None
    given_name_lat: str | None = None
    family_name_lat: str | None = None
    sex: Literal["F", "M"] | None = None
    birth_date: str | None = None
    birth_place: str | None = None
    cnie: str | None = None
    nationality: str | None = None
    residency_status: Literal["citizen", "resident"] | None = None
    address: str | None = None
    region: str | None = None
    province: str | None = None
    phone: str | None = None


class Rectification(PersonChanges):
    """An office's correction: fields, and a death to record."""

    status: Literal["deceased"] | None = Field(
        default=None, description="Record a death; erasure is a separate, audited procedure"
    )


@dataclass(frozen=True)
class RectifiedPerson:
    version: int | None
    status: str
    decision_id: str


def duplicate_person() -> Problem:
    # Law 72.18 art. 8: one IDCS per person. The answer never names the existing IDCS.
    return Problem(409, "duplicate-person", "A person with the same identity is already enrolled.")


def rectify_person(
    services: Services,
    enforcer: Enforcer,
    idcs: str,
    updates: dict[str, Any],
    new_status: Literal["deceased"] | None = None,
) -> RectifiedPerson:
    """Apply ``updates`` (and a status) to the person's record under one decision of
    ``enforcer``'s action: the whole record is read, merged, validated as an enrolment is, and
    written as a new version. Raises :class:`Problem` (404 unknown, 403 denied, 409 duplicate
    or changed meanwhile, 422 invalid)."""
    if not updates and new_status is None:
        raise Problem(422, "validation-error", "Nothing to rectify.")
    try:
        current = services.register.vault_subject(idcs)
    except (UnknownPerson, PersonErased):
        enforcer.refuse_unknown(
            resource={"kind": "person", "fields": sorted(updates)}, purpose=None
        )
        raise  # unreachable
    # The whole record is read (to merge) and rewritten, so the decision covers every field.
    outcome = enforcer.decide(
        resource={"kind": "person", "fields": sorted(PERSON)},
        purpose=None,
        vault_subjects=(current,),
        subject_tag=enforcer.subject_tag(idcs),
    ).require_allowed()
    version = None
    if updates:
        record: dict[str, Any] = services.vault.reveal(
            current, list(outcome.result.fields), outcome.decisions[current]
        )
        record.update(updates)
        try:
            corrected = PersonIn(**record)
        except ValidationError as exc:
            where = ", ".join(sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()}))
            raise Problem(
                422, "validation-error", f"The rectified record is not valid at: {where}."
            ) from None
        try:
            version = services.register.rectify(idcs, corrected)
        except DuplicatePerson:
            raise duplicate_person() from None
        except StaleVersion:
            raise Problem(
                409, "conflict", "The record changed meanwhile; read it and retry."
            ) from None
    if new_status is not None:
        services.register.set_status(idcs, new_status)
    return RectifiedPerson(version, services.register.status(idcs), outcome.decision_id)


# -- a citizen's requests ----------------------------------------------------------------------


def _own_requests(enforcer: Enforcer, fields: list[str], subjects: list[str]) -> Outcome:
    """One decision about the caller's own requests (the owner rule), sealed for ``subjects``."""
    idcs = enforcer.principal.subject
    outcome = enforcer.decide(
        resource={"kind": "rectification_request", "owner": idcs, "fields": fields},
        purpose=None,
        vault_subjects=subjects,
        subject_tag=enforcer.subject_tag(idcs),
    ).require_allowed()
    return outcome


def submit_request(
    services: Services, enforcer: Enforcer, changes: PersonChanges, statement: str
) -> RectificationRequest:
    """Record the caller's request for the office (action ``request_rectification``)."""
    proposed = changes.model_dump(exclude_unset=True, exclude_none=True)
    if not proposed:
        raise Problem(422, "validation-error", "Name at least one field to correct.")
    # Each value as the register would store it, so the office is not asked to accept what
    # could never be written (the whole record is validated again on acceptance).
    wrong = []
    for name, value in proposed.items():
        try:
            PERSON[name].check("person", name, value)
        except InvalidRecord:
            wrong.append(name)
    if wrong:
        raise Problem(
            422, "validation-error", f"The proposed values are not valid at: {', '.join(wrong)}."
        )
    idcs = enforcer.principal.subject
    try:
        if services.register.status(idcs) != "active":
            raise UnknownPerson()
    except (UnknownPerson, PersonErased):
        raise Problem(404, "not-found", "The register holds no data about you.") from None
    _own_requests(enforcer, list(REQUEST_FIELDS), [])
    try:
        return services.rectifications.submit(idcs, proposed, statement)
    except InvalidRecord:
        raise Problem(
            422, "validation-error", "A proposed value or the statement is too long."
        ) from None


def my_requests(services: Services, enforcer: Enforcer) -> list[dict[str, Any]]:
    """The caller's requests, newest first, each refusal with its reason (revealed from the
    vault under one decision)."""
    found = services.rectifications.of_person(enforcer.principal.subject)
    refused = [r.vault_subject for r in found if r.status == "refused"]
    outcome = _own_requests(enforcer, ["refusal_reason"], refused)
    reasons = {
        subject: services.vault.reveal(subject, ["refusal_reason"], outcome.decisions[subject])
        for subject in refused
        if subject in outcome.decisions
    }
    return [
        {**r.as_public(), "reason": reasons.get(r.vault_subject, {}).get("refusal_reason")}
        for r in found
    ]


# -- the office's queue ------------------------------------------------------------------------


def _request(services: Services, request_id: str) -> RectificationRequest:
    try:
        return services.rectifications.get(request_id)
    except UnknownRequest:
        raise Problem(404, "not-found", "No such rectification request.") from None


def _officer(enforcer: Enforcer) -> str:
    return str(enforcer.actor()["id"])


def _about_request(enforcer: Enforcer, request: RectificationRequest, fields: list[str]) -> Outcome:
    """One decision of the officer's action about ``request``'s vault record, filed under
    the person's tag (their access log shows the office read or decided their request)."""
    return enforcer.decide(
        resource={"kind": "rectification_request", "fields": fields},
        purpose=None,
        vault_subjects=[request.vault_subject],
        subject_tag=enforcer.subject_tag(request.idcs),
    ).require_allowed()


def request_queue(
    services: Services, enforcer: Enforcer, status: RequestStatus | None
) -> list[RectificationRequest]:
    """The queue (action ``list_rectification_requests``): names and dates, no value."""
    enforcer.decide(resource={"kind": "rectification_request"}, purpose=None).require_allowed()
    return services.rectifications.listed(status=status)


def open_request(
    services: Services, enforcer: Enforcer, request_id: str
) -> tuple[RectificationRequest, dict[str, Any], str]:
    """The request, its proposed values and statement (action ``open_rectification_request``)
    and the decision id."""
    request = _request(services, request_id)
    outcome = _about_request(enforcer, request, list(REQUEST_FIELDS))
    values = services.vault.reveal(
        request.vault_subject, list(REQUEST_FIELDS), outcome.decisions[request.vault_subject]
    )
    return (
        request,
        {
            "proposed": json.loads(str(values["proposed"])) if "proposed" in values else None,
            "statement": values.get("statement"),
        },
        outcome.decision_id,
    )


def accept_request(
    services: Services, enforcer: Enforcer, request_id: str
) -> tuple[RectificationRequest, RectifiedPerson]:
    """Apply the request through :func:`rectify_person` (action
    ``decide_rectification_request``) and close it linked to the new version."""
    request = _pending(services, request_id)
    outcome = _about_request(enforcer, request, ["proposed"])
    values = services.vault.reveal(
        request.vault_subject, ["proposed"], outcome.decisions[request.vault_subject]
    )
    proposed = json.loads(str(values["proposed"]))
    done = rectify_person(services, enforcer, request.idcs, proposed)
    try:
        closed = services.rectifications.accepted(
            request_id, officer=_officer(enforcer), version=done.version
        )
    except RequestDecided:
        raise _decided() from None
    return closed, done


def refuse_request(
    services: Services, enforcer: Enforcer, request_id: str, reason: str
) -> tuple[RectificationRequest, str]:
    """Close the request as refused, its reason kept in the vault beside it (action
    ``decide_rectification_request``); returns it and the decision id."""
    request = _pending(services, request_id)
    outcome = _about_request(enforcer, request, ["refusal_reason"])
    try:
        closed = services.rectifications.refused(
            request_id, officer=_officer(enforcer), reason=reason
        )
    except RequestDecided:
        raise _decided() from None
    except InvalidRecord:
        raise Problem(422, "validation-error", "The reason is too long.") from None
    return closed, outcome.decision_id


def _decided() -> Problem:
    return Problem(409, "already-decided", "This request has been decided already.")


def _pending(services: Services, request_id: str) -> RectificationRequest:
    request = _request(services, request_id)
    if request.status != "pending":
        raise _decided()
    return request
