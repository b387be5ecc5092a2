"""The RSU registration API for registration offices (DESIGN.md "HTTP surface").

``POST /v1/rsu/households``: members by IDCS (each already in the RNP, each in no other
household, exactly one head) and the socio-economic declaration. The declaration goes to the
vault, the household is scored there, and the answer carries ids only, never the score (an
office registers; it does not learn the index).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.authz import Enforcer, authorize
from gateway.problems import Problem, responses
from gateway.services import Services, get_services
from rsu import AlreadyInHousehold, DeclarationIn, MemberIn, UnknownMember
from rsu.declarations import problems_of, validate_members

router = APIRouter(
    prefix="/v1/rsu",
    tags=["registration offices"],
    responses=responses(400, 401, 403, 408, 413, 422, 503),
)


class HouseholdIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    members: list[MemberIn] = Field(min_length=1, max_length=100)
    declaration: DeclarationIn


class Registered(BaseModel):
    household_id: str
    size: int
    model_version: str | None
    decision_id: str


# The policy's field names for a household record (policies/data/fields.json).
_FIELDS = ["declaration", "household_size", "members", "milieu", "province", "region"]


@router.post(
    "/households",
    status_code=201,
    response_model=Registered,
    summary="Register a household (members by IDCS + declaration); it is scored in the vault",
)
def register_household(
    body: HouseholdIn,
    enforcer: Enforcer = Depends(
        authorize("register_household", kinds=["office"], scopes=["rsu:register"])
    ),
    services: Services = Depends(get_services),
) -> Registered:
    try:
        validate_members(body.members)
    except ValueError as exc:
        raise Problem(
            422, "validation-error", "The household is not valid.",
            errors=[{"field": f, "reason": r} for f, r in problems_of(exc)],
        ) from None  # fmt: skip
    head = next(m.idcs for m in body.members if m.relation == "head")
    fields = sorted([*_FIELDS, "address"] if body.declaration.address else _FIELDS)
    outcome = enforcer.decide(
        resource={"kind": "household", "fields": fields},
        purpose=None,
        subject_tag=enforcer.subject_tag(head),
    )
    outcome.require_allowed()
    try:
        household = services.households.register_household(body.members, body.declaration)
    except UnknownMember:
        # Law 72.18: RSU registration requires prior RNP registration. Which member is not
        # said: the answer must not confirm or deny any one IDCS.
        raise Problem(
            422, "unknown-member",
            "A member is not an active person of the population register; nothing was stored.",
        ) from None  # fmt: skip
    except AlreadyInHousehold:
        raise Problem(
            422, "already-in-household",
            "A member already belongs to a household; nothing was stored.",
        ) from None  # fmt: skip
    except ValidationError as exc:
        raise Problem(
            422, "validation-error", "The household is not valid.",
            errors=[{"field": f, "reason": r} for f, r in problems_of(exc)],
        ) from None  # fmt: skip
    return Registered(
        household_id=household.household_id,
        size=household.size,
        model_version=household.model_version,
        decision_id=outcome.decision_id,
    )
