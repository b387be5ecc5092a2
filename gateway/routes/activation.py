"""Registration offices issue a citizen's one-time activation code (a first sign-in, or a
lost phone: the old TOTP secret is disabled). Mediated like enrolment: the office's token,
one policy decision on the record, then the code (gateway.web.activation)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from gateway.admission import authorize
from gateway.authz import Enforcer
from gateway.params import IdcsPath
from gateway.problems import Problem, responses
from gateway.services import Services, get_services
from gateway.timefmt import rfc3339
from gateway.web.activation import issue_activation_code
from identity import PersonErased, UnknownPerson

router = APIRouter(prefix="/v1/rnp", tags=["rnp"], responses=responses(401, 403, 404, 422, 503))


class ActivationCode(BaseModel):
    idcs: str
    activation_code: str = Field(description="One-time code, also sent to the citizen")
    expires_at: str = Field(description="RFC 3339, UTC")
    decision_id: str


@router.post(
    "/persons/{idcs}/activation-code",
    status_code=201,
    response_model=ActivationCode,
    summary="Issue a citizen's one-time portal activation code (disables an older sign-in)",
)
def issue(
    request: Request,
    idcs: IdcsPath,
    enforcer: Enforcer = Depends(authorize("enrol", kinds=["office"])),
    services: Services = Depends(get_services),
) -> ActivationCode:
    outcome = enforcer.decide(
        resource={"kind": "person", "fields": []},
        purpose=None,
        subject_tag=enforcer.subject_tag(idcs),
    )
    outcome.require_allowed()
    try:
        issued = issue_activation_code(services, idcs, enforcer.actor())
    except (UnknownPerson, PersonErased):
        raise Problem(404, "not-found", "No enrolled person has this IDCS.") from None
    return ActivationCode(
        idcs=idcs,
        activation_code=issued.code,
        expires_at=rfc3339(issued.expires_at * 1_000_000_000),
        decision_id=outcome.decision_id,
    )
