"""The agency data-access API: lookup, field query, eligibility (DESIGN.md "HTTP surface").

Each route walks the whole mediated path: token → principal → pseudonym resolved within the
agency's sector → consents and objections gathered → one policy decision → one audit entry,
durable → vault reveal of only the released fields → response. The whole path runs in one
worker thread (gateway/authz.py :class:`Admission`): the event loop only parses the request.
A purpose is mandatory on every call, and every call, allowed or denied, leaves exactly one
audit entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from gateway.admission import Admission, admit
from gateway.authz import Enforcer, Outcome
from gateway.problems import Problem, responses
from gateway.questions import Resource, person_records
from gateway.responses import model_json
from gateway.services import Services
from identity import MAX_TRANSLATE, PersonErased, UnknownPseudonym
from policies.registry import field_catalogue
from rsu import Subjects, resolve_subjects
from vault import EligibilityAsk, NotScored, VaultError

CATALOGUE = field_catalogue()

router = APIRouter(
    prefix="/v1/agency",
    tags=["agencies"],
    responses=responses(400, 401, 403, 404, 408, 413, 422, 429, 503),
)

Purpose = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]{1,63}$",
        description="A purpose declared in the processing registry",
    ),
]
FieldName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
PSEUDONYM_PATTERN = r"^[a-z][a-z0-9_-]{0,31}\.v[0-9]{1,4}\.[a-z2-7]{16,128}$"
PseudonymPath = Annotated[
    str, Path(pattern=PSEUDONYM_PATTERN, description="This agency's sector pseudonym")
]


class LookupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cnie: str = Field(
        min_length=2,
        max_length=16,
        pattern=r"^[A-Za-z]{1,2}[0-9]{1,8}$",
        description="The CNIE number the citizen gave the agency",
    )
    purpose: Purpose


class LookupOut(BaseModel):
    pseudonym: str
    decision_id: str


class QueryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fields: list[FieldName] = Field(min_length=1, max_length=32)
    purpose: Purpose


class Withheld(BaseModel):
    field: str
    reason: str


class QueryOut(BaseModel):
    released: dict[str, Any]
    withheld: list[Withheld]
    decision_id: str
    legal_basis: dict[str, Any] | None


class TranslateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pseudonyms: list[Annotated[str, Field(max_length=128)]] = Field(
        min_length=1,
        max_length=MAX_TRANSLATE,
        description="Pseudonyms of this agency's sector it holds, under any live key version",
    )


class Translation(BaseModel):
    pseudonym: str
    current: str


class TranslateOut(BaseModel):
    translations: list[Translation]
    unknown: list[str]
    decision_id: str


class EligibilityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    program: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")]
    purpose: Purpose


class EligibilityOut(BaseModel):
    eligible: bool
    decision_id: str


def registered_purpose(enforcer: Enforcer, resource: Resource, purpose: str) -> None:
    """A purpose this client is not registered for is decided before anything is looked up:
    the policy denies it whoever the person is, the denial is on the record (one entry, no
    subject), and the answer says only what the client's own registration says (where a
    denial about a person would look like an unknown person, 404)."""
    mine = enforcer.principal.purposes
    if purpose not in mine:
        enforcer.decide(resource=resource, purpose=purpose)
        raise Problem(
            403,
            "purpose-not-registered",
            f"This client is not registered for the purpose {purpose!r}; its purposes are: "
            f"{', '.join(sorted(mine)) or 'none'}. The registry's administrator registers "
            "purposes (GET /v1/registry/purposes lists the declared ones).",
            purpose=purpose,
        )


def known_fields(requested: list[str]) -> None:
    """A request none of whose fields the catalogue knows is a mistake, not a question."""
    if not set(requested) & CATALOGUE:
        raise Problem(
            422,
            "unknown-field",
            f"No field of the request is known: {', '.join(requested)}. The field catalogue "
            "is in GET /v1/registry/purposes (each purpose's fields).",
            fields=requested,
        )


def _withheld(
    outcome: Outcome, requested: list[str], released: Mapping[str, object]
) -> list[Withheld]:
    """Each requested field the response does not carry, and why: the policy's reason, or
    ``not_recorded`` for a released field the register holds no value of."""
    decided = set(outcome.result.fields)
    return [
        Withheld(
            field=name,
            reason="not_recorded"
            if name in decided
            else outcome.result.withheld.get(name, "not_released"),
        )
        for name in requested
        if name not in released
    ]


@router.post(
    "/lookup",
    response_model=LookupOut,
    summary="CNIE number + purpose → this agency's pseudonym for the person",
)
async def lookup(
    body: LookupIn, admission: Admission = Depends(admit("lookup", kinds=["agency"]))
) -> Response:
    return await admission.run(lambda enforcer: _lookup(enforcer, body))


def _lookup(enforcer: Enforcer, body: LookupIn) -> Response:
    services = enforcer.services
    resource: Resource = {"kind": "person", "fields": []}
    registered_purpose(enforcer, resource, body.purpose)
    idcs = services.register.find_by_cnie(body.cnie)
    if idcs is None:
        # Asked about a keyed stand-in as about a person: an unknown number then costs what
        # a known person's denial costs, and the 404s cannot be told apart by their timing.
        stand_in = enforcer.context(services.register.stand_in(body.cnie))
        enforcer.refuse_unknown(resource=resource, purpose=body.purpose, stand_in=stand_in)
    assert idcs is not None
    context = enforcer.context(idcs)
    outcome = enforcer.decide(
        resource=resource,
        purpose=body.purpose,
        subject_tag=context.subject_tag,
        consents=context.consents,
        objections=context.objections,
    )
    if not outcome.allowed:
        # The same answer as an unknown number: a denial must not confirm that a person
        # holds this CNIE (an objection, for one, depends on the person).
        raise Problem(404, "not-found", "No such person for this agency.")
    pseudonym = services.pseudonyms.pseudonym_for(idcs, enforcer.principal.sector)
    return model_json(LookupOut(pseudonym=str(pseudonym), decision_id=outcome.decision_id))


def find(services: Services, enforcer: Enforcer, pseudonym: str) -> Subjects | None:
    """The records behind one of this agency's pseudonyms; None for an unknown, erased or
    retired one, and for another sector's, alike (no oracle)."""
    try:
        return resolve_subjects(services.engines["main"], enforcer.principal.sector, pseudonym)
    except (UnknownPseudonym, PersonErased):
        return None


def _resolve(
    services: Services, enforcer: Enforcer, pseudonym: str, resource: Resource, purpose: str
) -> Subjects:
    found = find(services, enforcer, pseudonym)
    if found is None:
        enforcer.refuse_unknown(resource=resource, purpose=purpose)
    assert found is not None  # refuse_unknown raises
    return found


def query_answer(outcome: Outcome, requested: list[str], released: dict[str, Any]) -> QueryOut:
    """An allowed query's answer: the released values, and each other field with its reason."""
    return QueryOut(
        released=released,
        withheld=_withheld(outcome, requested, released),
        decision_id=outcome.decision_id,
        legal_basis=outcome.result.legal_basis,
    )


def eligibility_answer(
    services: Services, household: str | None, outcome: Outcome
) -> EligibilityOut:
    """The boolean an eligibility decision allows (raises its 403 when it does not): the score
    is compared inside the vault and never leaves it."""
    (answer,) = eligibility_answers(services, [(outcome, household)])
    if isinstance(answer, Problem | VaultError):
        raise answer
    return answer


def eligibility_answers(
    services: Services, decided: Sequence[tuple[Outcome, str | None]]
) -> list[EligibilityOut | Problem | VaultError]:
    """:func:`eligibility_answer` of each (outcome, household), in order, the scores compared
    through one vault read: the answer, the refusal, or the vault's error for that item."""
    asks: list[EligibilityAsk] = []
    for outcome, household in decided:
        predicate = outcome.result.predicate
        if outcome.allowed and predicate is not None and household is not None:
            threshold = Decimal(str(predicate["threshold"]))
            comparison = str(predicate.get("comparison", "lte"))
            asks.append((household, threshold, outcome.decisions[household], comparison))
    compared = iter(services.vault.eligible_many(asks) if asks else [])
    answers: list[EligibilityOut | Problem | VaultError] = []
    for outcome, household in decided:
        if not outcome.allowed or outcome.result.predicate is None:
            answers.append(outcome.denied())
            continue
        # Not in the RSU, or registered but not yet scored: no eligibility to assert.
        eligible = False if household is None else next(compared)
        if isinstance(eligible, NotScored):
            eligible = False
        if isinstance(eligible, VaultError):
            answers.append(eligible)
        else:
            answers.append(EligibilityOut(eligible=eligible, decision_id=outcome.decision_id))
    return answers


@router.post(
    "/persons/{pseudonym}/query",
    response_model=QueryOut,
    summary="Fields + purpose → the released fields, the withheld ones and why",
)
async def query(
    pseudonym: PseudonymPath,
    body: QueryIn,
    admission: Admission = Depends(admit("read_attributes", kinds=["agency"])),
) -> Response:
    return await admission.run(lambda enforcer: _query(enforcer, pseudonym, body))


def _query(enforcer: Enforcer, pseudonym: str, body: QueryIn) -> Response:
    services = enforcer.services
    requested = sorted(set(body.fields))
    resource: Resource = {"kind": "person", "fields": requested}
    registered_purpose(enforcer, resource, body.purpose)
    known_fields(requested)
    found = _resolve(services, enforcer, pseudonym, resource, body.purpose)
    context = enforcer.context(found.idcs)
    outcome = enforcer.decide(
        resource=resource,
        purpose=body.purpose,
        vault_subjects=person_records(found),
        subject_tag=context.subject_tag,
        consents=context.consents,
        objections=context.objections,
    ).require_allowed()
    return model_json(query_answer(outcome, requested, enforcer.reveal(outcome, requested)))


@router.post(
    "/persons/{pseudonym}/eligibility",
    response_model=EligibilityOut,
    summary="Program + purpose → eligible or not, and nothing else",
)
async def eligibility(
    pseudonym: PseudonymPath,
    body: EligibilityIn,
    admission: Admission = Depends(admit("eligibility", kinds=["agency"])),
) -> Response:
    return await admission.run(lambda enforcer: _eligibility(enforcer, pseudonym, body))


def _eligibility(enforcer: Enforcer, pseudonym: str, body: EligibilityIn) -> Response:
    services = enforcer.services
    resource: Resource = {"kind": "household", "fields": [], "program": body.program}
    registered_purpose(enforcer, resource, body.purpose)
    found = _resolve(services, enforcer, pseudonym, resource, body.purpose)
    household = found.household
    context = enforcer.context(found.idcs)
    outcome = enforcer.decide(
        resource=resource,
        purpose=body.purpose,
        vault_subjects=[household] if household else [],
        subject_tag=context.subject_tag,
        consents=context.consents,
        objections=context.objections,
    )
    return model_json(eligibility_answer(services, household, outcome))


@router.post(
    "/pseudonyms/translate",
    response_model=TranslateOut,
    summary="Pseudonyms this agency holds → their current key version (during a rotation)",
)
async def translate_pseudonyms(
    body: TranslateIn,
    admission: Admission = Depends(admit("translate_pseudonyms", kinds=["agency"])),
) -> Response:
    """Up to 1,000 pseudonyms of the agency's own sector, each to the same person's pseudonym
    under the sector's current key; any other string (another sector's, a retired version's,
    never issued) is listed as unknown, and nothing more is said of it. One audit entry for
    the batch, with its count (the policy's ``audit: batch`` obligation)."""
    return await admission.run(lambda enforcer: _translate(enforcer, body))


def _translate(enforcer: Enforcer, body: TranslateIn) -> Response:
    services = enforcer.services
    sector = enforcer.principal.sector
    outcome = enforcer.decide(
        resource={"kind": "pseudonyms", "sector": sector},
        purpose=None,
        recorded=[f"count={len(body.pseudonyms)}"],
    ).require_allowed()
    mapped = services.pseudonyms.translate(sector, body.pseudonyms)
    return model_json(
        TranslateOut(
            translations=[
                Translation(pseudonym=old, current=str(new))
                for old, new in mapped.items()
                if new is not None
            ],
            unknown=[old for old, new in mapped.items() if new is None],
            decision_id=outcome.decision_id,
        )
    )
