"""The citizen's household (Law 09.08 art. 7: the right of access): ``GET /v1/me/household``
(its composition as the citizen may see it and the declaration released to them) and
``GET /v1/me/household/history`` (each change an office made: kind, reason, date, office,
member counts). Each read is decided by the policy (owner rule) and on the audit log.

What a member sees of the others: their relation to the head and nothing else (no IDCS, no
age, no occupation; those are the other members' own data). Of the declaration: what is the
household's (dwelling, utilities, spending, goods, land), and their own answers.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from gateway.admission import authorize
from gateway.authz import Enforcer
from gateway.problems import Problem, responses
from gateway.services import Services, get_services
from gateway.timefmt import rfc3339, to_ns
from rsu import EventKind

router = APIRouter(
    prefix="/v1/me",
    tags=["citizens"],
    responses=responses(400, 401, 403, 404, 408, 413, 422, 503),
)

# policy field -> vault field of a household record (policies/data/fields.json)
_RECORD = {
    "declaration": "declaration",
    "household_size": "size",
    "members": "members",
    "milieu": "area",
    "province": "province",
    "region": "region",
}


def _household(services: Services, idcs: str) -> tuple[str, str]:
    """(household id, vault subject) of the citizen's household, else 404."""
    household_id = services.households.household_id_of(idcs)
    subject = services.households.household_of(idcs) if household_id else None
    if household_id is None or subject is None:
        raise Problem(404, "no-household", "You are not a member of a household in the RSU.")
    return household_id, subject


@router.get("/household", summary="My household: who is in it (by relation) and its declaration")
def my_household(
    enforcer: Enforcer = Depends(authorize("read_own_data", kinds=["citizen"])),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    idcs = enforcer.principal.subject
    household_id, subject = _household(services, idcs)
    fields = sorted(_RECORD)
    outcome = enforcer.decide(
        resource={"kind": "household", "owner": idcs, "fields": fields},
        purpose=None,
        vault_subjects={subject: _RECORD},
        subject_tag=enforcer.subject_tag(idcs),
    ).require_allowed()
    values = enforcer.reveal(outcome, fields)
    members = json.loads(str(values.get("members", "[]")))
    declaration: dict[str, Any] = json.loads(str(values.get("declaration", "{}")))
    answers = declaration.pop("members", [])
    return {
        "household_id": household_id,
        "size": values.get("household_size"),
        "milieu": values.get("milieu"),
        "region": values.get("region"),
        "province": values.get("province"),
        "members": [{"relation": m.get("relation"), "you": m.get("idcs") == idcs} for m in members],
        "your_answers": next(
            ({k: v for k, v in a.items() if k != "idcs"} for a in answers if a.get("idcs") == idcs),
            None,
        ),
        "declaration": declaration,
        "decision_id": outcome.decision_id,
    }


class HouseholdChange(BaseModel):
    kind: EventKind
    reason: str | None = Field(description="birth, death, departure, marriage, ... (a code)")
    at: str = Field(description="When, RFC 3339 UTC")
    office: str | None = Field(description="The registration office that made the change")
    size_before: int
    size_after: int
    concerns_you: bool = Field(description="You were the member who joined or left")


class HouseholdHistory(BaseModel):
    household_id: str
    changes: list[HouseholdChange]
    decision_id: str


@router.get(
    "/household/history",
    response_model=HouseholdHistory,
    summary="Each change an office made to my household, oldest first",
)
def my_household_history(
    enforcer: Enforcer = Depends(authorize("read_household_history", kinds=["citizen"])),
    services: Services = Depends(get_services),
) -> HouseholdHistory:
    idcs = enforcer.principal.subject
    household_id, _subject = _household(services, idcs)
    outcome = enforcer.decide(
        resource={"kind": "household", "owner": idcs, "fields": []},
        purpose=None,
        subject_tag=enforcer.subject_tag(idcs),
    ).require_allowed()
    return HouseholdHistory(
        household_id=household_id,
        changes=[
            HouseholdChange(
                kind=e.kind,
                reason=e.reason,
                at=rfc3339(to_ns(e.at)),
                office=e.office,
                size_before=e.size_before,
                size_after=e.size_after,
                concerns_you=e.member_idcs == idcs,
            )
            for e in services.households.history(household_id)
        ],
        decision_id=outcome.decision_id,
    )
