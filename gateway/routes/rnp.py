"""Registration offices: enrol persons in the RNP and rectify them (Law 72.18; Law 09.08
art. 8). The IDCS is returned to the office that enrolled the person, and to no one else."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.authz import Enforcer, authorize
from gateway.problems import Problem, responses
from gateway.services import Services, get_services
from identity import DuplicatePerson, PersonErased, PersonIn, StaleVersion, UnknownPerson
from vault.schema import PERSON

router = APIRouter(
    prefix="/v1/rnp",
    tags=["registration offices"],
    responses=responses(400, 401, 403, 404, 408, 409, 413, 422, 503),
)
IdcsPath = Annotated[str, Path(pattern=r"^[2-9][0-9]{9}$", description="The person's IDCS")]


class Enrolled(BaseModel):
    idcs: str
    decision_id: str
    activation_code: str = Field(
        description="One-time code for the citizen's portal sign-in, also queued to them"
    )


class Rectification(BaseModel):
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
    status: Literal["deceased"] | None = Field(
        default=None, description="Record a death; erasure is a separate, audited procedure"
    )


class Rectified(BaseModel):
    idcs: str
    version: int | None
    status: str
    decision_id: str


def _duplicate() -> Problem:
    # Law 72.18 art. 8: one IDCS per person. The answer never names the existing IDCS.
    return Problem(409, "duplicate-person", "A person with the same identity is already enrolled.")


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
        raise _duplicate() from None
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
    fields = sorted(PERSON)
    outcome = enforcer.decide(
        resource={"kind": "person", "fields": fields},
        purpose=None,
        vault_subjects=(current,),
        subject_tag=enforcer.subject_tag(idcs),
    )
    outcome.require_allowed()
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
            raise _duplicate() from None
        except StaleVersion:
            raise Problem(
                409, "conflict", "The record changed meanwhile; read it and retry."
            ) from None
    if new_status is not None:
        services.register.set_status(idcs, new_status)
    return Rectified(
        idcs=idcs,
        version=version,
        status=services.register.status(idcs),
        decision_id=outcome.decision_id,
    )
