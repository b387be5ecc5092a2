"""Registration offices: enrol persons in the RNP and rectify them (Law 72.18; Law 09.08
art. 8). The IDCS is returned to the office that enrolled the person, and to no one else."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from gateway.admission import authorize
from gateway.authz import Enforcer
from gateway.params import IdcsPath
from gateway.problems import responses
from gateway.rectification import Rectification, duplicate_person, rectify_person
from gateway.services import Services, get_services
from identity import DuplicatePerson, PersonIn

router = APIRouter(
    prefix="/v1/rnp",
    tags=["registration offices"],
    responses=responses(400, 401, 403, 404, 408, 409, 413, 422, 503),
)


class Enrolled(BaseModel):
    idcs: str
    decision_id: str
    activation_code: str = Field(
        description="One-time code for the citizen's portal sign-in, also queued to them"
    )


class Rectified(BaseModel):
    idcs: str
    version: int | None
    status: str
    decision_id: str


@router.post(
    "/persons",
    status_code=201,
    response_model=Enrolled,
    summary="Enrol a person; returns the new IDCS",
)
def enrol(
    request: Request,
    person: PersonIn,
    enforcer: Enforcer = Depends(authorize("enrol", kinds=["office"])),
    services: Services = Depends(get_services),
) -> Enrolled:
    fields = sorted(k for k, v in person.model_dump().items() if v is not None)
    outcome = enforcer.decide(resource={"kind": "person", "fields": fields}, purpose=None)
    outcome.require_allowed()
    try:
        idcs = services.register.enrol(person)
    except DuplicatePerson:
        raise duplicate_person() from None
    from gateway.web.activation import issue_activation_code

    # The person's first portal sign-in starts here (gateway/web/activation.py).
    activation = issue_activation_code(services, str(idcs), enforcer.actor())
    return Enrolled(
        idcs=str(idcs), decision_id=outcome.decision_id, activation_code=activation.code
    )


@router.patch(
    "/persons/{idcs}",
    response_model=Rectified,
    summary="Rectify a person's record, keeping the previous version",
)
def rectify(
    idcs: IdcsPath,
    changes: Rectification,
    enforcer: Enforcer = Depends(authorize("rectify", kinds=["office"])),
    services: Services = Depends(get_services),
) -> Rectified:
    updates = changes.model_dump(exclude_unset=True)
    new_status = updates.pop("status", None)
    done = rectify_person(services, enforcer, idcs, updates, new_status)
    return Rectified(
        idcs=idcs, version=done.version, status=done.status, decision_id=done.decision_id
    )
