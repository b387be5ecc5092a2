"""The RSU API for registration offices (DESIGN.md "HTTP surface").

``POST /v1/rsu/households``: members by IDCS (each already in the RNP, each in no other
household, exactly one head) and the socio-economic declaration. The declaration goes to the
vault, the household is scored there, and the answer carries ids only, never the score (an
office registers; it does not learn the index).

The household's changes (Law 72.18: the RSU follows births, deaths, marriages, departures),
each decided, audited, recorded in the household's history and rescored in the vault at once
(``gateway/households.py``): ``POST …/{household_id}/members`` (a member joins),
``DELETE …/{household_id}/members/{idcs}?reason=`` (a member leaves), ``POST …/split`` (named
members form a new household), ``PUT …/declaration`` (a new declaration). Another sector's
household answers as an unknown one: 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel

from gateway import households as changes
from gateway.admission import authorize
from gateway.authz import Enforcer
from gateway.households import ChangedOut, HouseholdIn, MemberAdded, SplitIn
from gateway.problems import responses
from gateway.services import Services, get_services
from rsu import (
    RemoveReason,
)
from rsu.declarations import validate_members

router = APIRouter(
    prefix="/v1/rsu",
    tags=["registration offices"],
    responses=responses(400, 401, 403, 408, 413, 422, 503),
)


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
    with changes.refusals():
        validate_members(body.members)
    head = next(m.idcs for m in body.members if m.relation == "head")
    fields = sorted([*_FIELDS, "address"] if body.declaration.address else _FIELDS)
    outcome = enforcer.decide(
        resource={"kind": "household", "fields": fields},
        purpose=None,
        subject_tag=enforcer.subject_tag(head),
    )
    outcome.require_allowed()
    with changes.refusals():
        household = services.households.register_household(
            body.members, body.declaration, by=changes.changed_by(enforcer)
        )
    return Registered(
        household_id=household.household_id,
        size=household.size,
        model_version=household.model_version,
        decision_id=outcome.decision_id,
    )


# -- household changes -------------------------------------------------------------------------
HouseholdId = Annotated[str, Path(pattern=r"^h_[0-9a-f]{24}$", description="The household's id")]
IdcsPath = Annotated[str, Path(pattern=r"^[2-9]\d{9}$", description="The member's IDCS")]
_RSU = ["rsu:register"]


@router.post(
    "/households/{household_id}/members",
    responses=responses(404),
    response_model=ChangedOut,
    summary="A member joins (birth, marriage, ...): an RNP person in no other household",
)
def add_member(
    household_id: HouseholdId,
    body: MemberAdded,
    enforcer: Enforcer = Depends(authorize("add_household_member", kinds=["office"], scopes=_RSU)),
) -> ChangedOut:
    return changes.add_member(enforcer, household_id, body.member, body.reason).out(household_id)


@router.delete(
    "/households/{household_id}/members/{idcs}",
    responses=responses(404),
    response_model=ChangedOut,
    summary="A member leaves (death, departure, ...); the last one leaving dissolves it",
)
def remove_member(
    household_id: HouseholdId,
    idcs: IdcsPath,
    reason: RemoveReason,
    new_head: Annotated[str | None, Query(pattern=r"^[2-9]\d{9}$")] = None,
    enforcer: Enforcer = Depends(
        authorize("remove_household_member", kinds=["office"], scopes=_RSU)
    ),
) -> ChangedOut:
    changed = changes.remove_member(enforcer, household_id, idcs, reason, new_head)
    return changed.out(household_id)


@router.post(
    "/households/{household_id}/split",
    responses=responses(404),
    response_model=ChangedOut,
    summary="Named members leave with their own declaration and form a new household",
)
def split(
    household_id: HouseholdId,
    body: SplitIn,
    enforcer: Enforcer = Depends(authorize("split_household", kinds=["office"], scopes=_RSU)),
) -> ChangedOut:
    changed = changes.split(enforcer, household_id, body.members, body.declaration, body.new_head)
    return changed.out(household_id)


@router.put(
    "/households/{household_id}/declaration",
    responses=responses(404),
    response_model=ChangedOut,
    summary="A new declaration of the whole household (every member listed); rescored",
)
def declare(
    household_id: HouseholdId,
    body: HouseholdIn,
    enforcer: Enforcer = Depends(authorize("declare_household", kinds=["office"], scopes=_RSU)),
) -> ChangedOut:
    changed = changes.declare(enforcer, household_id, body.members, body.declaration)
    return changed.out(household_id)
