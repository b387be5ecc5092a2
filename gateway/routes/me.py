"""The citizen's own routes (Law 09.08 art. 7–9): who used my data, my consents, my data,
my objections. Each is mediated like any other personal-data route: the policy checks that
the caller is the data subject, and the request goes on the record.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from audit import AuditEntry, AuditUnavailable, EntryFilter, NotYetCheckpointed
from consent import ConsentNotFound, InvalidConsent
from consent.receipts import iso27560_record
from gateway import reviews
from gateway.admission import authorize
from gateway.authz import Enforcer, Outcome
from gateway.params import MAX_INDEX, StorableAwareTime
from gateway.problems import Problem, responses
from gateway.services import Services, get_services
from gateway.timefmt import public_times, rfc3339, to_ns
from identity import PersonErased, UnknownPerson
from vault import Explanation, NotScored
from vault.schema import PERSON

router = APIRouter(
    prefix="/v1/me",
    tags=["citizens"],
    responses=responses(400, 401, 403, 404, 408, 413, 422, 503),
)
# Above every index a log can reach (a BIGINT): the access log's first page starts below it.
_PAST_THE_END = MAX_INDEX


def _own(
    enforcer: Enforcer,
    services: Services,
    *,
    fields: list[str] | None = None,
    kind: str = "own",
    vault_subjects: tuple[str, ...] = (),
) -> Outcome:
    """One decision about the caller's own data; 403 unless the policy allows it."""
    idcs = enforcer.principal.subject
    return enforcer.decide(
        resource={"kind": kind, "owner": idcs, "fields": fields or []},
        purpose=None,
        vault_subjects=vault_subjects,
        subject_tag=enforcer.subject_tag(idcs),
    ).require_allowed()


def _pseudonym(services: Services, idcs: str, sector: str) -> str:
    return str(services.pseudonyms.pseudonym_for(idcs, sector))


# -- access log -------------------------------------------------------------------------------


class AccessLogEntry(BaseModel):
    index: int
    time: str = Field(description="When, RFC 3339 UTC")
    agency: str | None
    actor_kind: str
    official: str | None = Field(
        description="The agency's acting official, by their pseudonymous id; the agency "
        "discloses the name on request"
    )
    case: str | None = Field(description="The agency's case reference the official worked on")
    court_order: str | None = Field(
        default=None,
        description="The court order a law-enforcement authority acted under (shown once its "
        "embargo has ended)",
    )
    action: str
    purpose: str | None
    fields: list[str]
    legal_basis: dict[str, Any] | None
    outcome: str
    reasons: list[str]
    receipt: str


class AccessLog(BaseModel):
    entries: list[AccessLogEntry]
    next_before: int | None


@router.get(
    "/access-log",
    response_model=AccessLog,
    summary="Who used my data, when, what, why and on which basis",
)
def access_log(
    before: Annotated[int | None, Query(ge=0, le=MAX_INDEX)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    include_own: bool = False,
    enforcer: Enforcer = Depends(authorize("read_access_log", kinds=["citizen"])),
    services: Services = Depends(get_services),
) -> AccessLog:
    _own(enforcer, services, kind="access_log")
    tag = enforcer.subject_tag(enforcer.principal.subject)
    return access_log_page(services, tag, before=before, limit=limit, include_own=include_own)


def access_log_page(
    services: Services, tag: str, *, before: int | None, limit: int, include_own: bool
) -> AccessLog:
    """One page of the access log of the person whose subject tag is ``tag``, newest first;
    ``next_before`` continues below its last entry (None on the last page). An entry made
    under a court order is left out until the order's embargo ends (docs/privacy.md,
    "Law-enforcement queries"): it is in the log from the start, only this view waits."""
    newest = before if before is not None else _PAST_THE_END
    found = services.audit.entries(EntryFilter(subject=tag), before=newest, limit=limit)
    now = services.court_orders.clock()
    out = []
    for logged in found:
        e = logged.entry
        if e.actor["kind"] == "citizen" and not include_own:
            continue  # by default, the uses others made of my data
        if embargoed(e, now):
            continue
        out.append(
            AccessLogEntry(
                index=logged.index,
                time=rfc3339(e.time_ns),
                agency=e.actor.get("id") if e.actor["kind"] == "agency" else None,
                actor_kind=e.actor["kind"],
                official=e.actor.get("official"),
                case=e.actor.get("case"),
                court_order=e.court_order["reference"] if e.court_order else None,
                action=e.action,
                purpose=e.purpose,
                fields=list(e.fields),
                legal_basis=e.legal_basis,
                outcome=e.outcome,
                reasons=list(e.reasons),
                receipt=f"/v1/me/access-log/{logged.index}/receipt",
            )
        )
    next_before = found[-1].index if len(found) == limit else None
    return AccessLog(entries=out, next_before=next_before)


def embargoed(entry: AuditEntry, now_ns: int) -> bool:
    """Whether the person's own view omits ``entry`` at ``now_ns``: a court order's embargo
    has not ended yet."""
    until = entry.embargo_until_ns
    return until is not None and now_ns < until


RECEIPT_WAIT_S = 3.0


@router.get(
    "/access-log/{index}/receipt",
    summary="Entry + inclusion proof + signed checkpoint, checkable offline",
)
def access_log_receipt(
    index: Annotated[int, Path(ge=0, le=MAX_INDEX)],
    enforcer: Enforcer = Depends(authorize("read_receipt", kinds=["citizen"])),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    _own(enforcer, services, kind="receipt")
    tag = enforcer.subject_tag(enforcer.principal.subject)
    logged = services.audit.entry(index)
    if (
        logged is None
        or logged.entry.subject != tag
        or embargoed(logged.entry, services.court_orders.clock())
    ):
        # Another person's entry is "not found", like a missing one; so is an entry under
        # a court order's embargo, until it ends.
        raise Problem(404, "not-found", "No such entry in your access log.")
    try:
        # An entry of the last second may wait for the checkpointer's next signature.
        return services.audit.receipt(index, wait_s=RECEIPT_WAIT_S)
    except NotYetCheckpointed:
        raise Problem(
            503,
            "receipt-not-ready",
            "No signed checkpoint covers this entry yet; ask again in a second.",
            headers={"Retry-After": "1"},
        ) from None
    except AuditUnavailable:
        raise Problem(
            503,
            "audit-unavailable",
            "The audit log store is unreachable; try again.",
            headers={"Retry-After": "5"},
        ) from None


# -- consents ---------------------------------------------------------------------------------


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    recipient: Annotated[
        str,
        Field(pattern=r"^[a-z][a-z0-9_-]{1,63}$", description="The agency the consent is given to"),
    ]
    purpose: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")]
    fields: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]] = Field(
        min_length=1, max_length=32
    )
    expires_at: StorableAwareTime = Field(description="Expiry, RFC 3339 with an offset (Z: UTC)")
    collection_method: Literal["portal", "counter"] = "portal"


def _invalid(exc: InvalidConsent) -> Problem:
    return Problem(422, f"consent-{exc.reason.replace('_', '-')}", exc.detail, reason=exc.reason)


@router.get("/consents", summary="My consents, with their signed receipts")
def list_consents(
    enforcer: Enforcer = Depends(authorize("manage_consents", kinds=["citizen"])),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    _own(enforcer, services, kind="consents")
    return {"consents": consent_views(services, enforcer.principal.subject)}


def consent_views(services: Services, idcs: str) -> list[dict[str, Any]]:
    """The person's consents, each with its signed receipt."""
    return [public_times(c.as_public()) for c in services.consents.of_subject(idcs)]


@router.post("/consents", status_code=201, summary="Give a consent; returns its receipt")
def grant_consent(
    body: ConsentIn,
    enforcer: Enforcer = Depends(authorize("manage_consents", kinds=["citizen"])),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    _own(enforcer, services, kind="consents")
    idcs = enforcer.principal.subject
    request: dict[str, Any] = {
        "recipient": body.recipient, "purpose": body.purpose, "fields": body.fields,
        "expires_at_ns": to_ns(body.expires_at), "method": body.collection_method,
    }  # fmt: skip
    try:
        # Checked before the receipt's pseudonym is computed: a refused request leaves no
        # trace, not even a sector pseudonym indexed on its behalf.
        entry, _ = services.consents.validate_grant(**request)
        pseudonym = _pseudonym(services, idcs, entry.sector)
        consent = services.consents.grant(subject=idcs, principal_id=pseudonym, **request)
    except InvalidConsent as exc:
        raise _invalid(exc) from None
    return public_times(consent.as_public())


@router.delete("/consents/{consent_id}", summary="Withdraw a consent; returns the new artefact")
def revoke_consent(
    consent_id: Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$")],
    enforcer: Enforcer = Depends(authorize("manage_consents", kinds=["citizen"])),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    _own(enforcer, services, kind="consents")
    idcs = enforcer.principal.subject
    try:
        current = services.consents.get(idcs, consent_id)
        revoked = services.consents.revoke(
            subject=idcs,
            consent_id=consent_id,
            principal_id=_pseudonym(services, idcs, current.sector),
        )
    except ConsentNotFound:
        raise Problem(404, "not-found", "No active consent with this id.") from None
    return public_times(revoked.as_public())


@router.get("/consents/{consent_id}/iso27560", summary="The consent as an ISO/IEC TS 27560 record")
def consent_record(
    consent_id: Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$")],
    enforcer: Enforcer = Depends(authorize("manage_consents", kinds=["citizen"])),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    _own(enforcer, services, kind="consents")
    idcs = enforcer.principal.subject
    try:
        history = services.consents.history(idcs, consent_id)
    except ConsentNotFound:
        raise Problem(404, "not-found", "No consent with this id.") from None
    consent = next(c for c in history if c.id == consent_id)  # the chain holds it
    entry = services.registry.get(consent.registry_entry)
    if entry is None:
        raise Problem(404, "not-found", "No consent with this id.")
    return iso27560_record(consent, entry, _pseudonym(services, idcs, consent.sector), history)


# -- objections -------------------------------------------------------------------------------


class ObjectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: Annotated[str | None, Field(pattern=r"^(\*|[a-z][a-z0-9_]{1,63})$")] = None
    sector: Annotated[str | None, Field(pattern=r"^[a-z][a-z0-9_-]{1,31}$")] = None
    reason: Literal["personal_situation", "direct_marketing", "other"]


@router.post(
    "/objections",
    status_code=201,
    summary="Object to a purpose or a sector; says what stops and what a law keeps",
)
def object_(
    body: ObjectionIn,
    enforcer: Enforcer = Depends(authorize("object", kinds=["citizen"])),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    _own(enforcer, services, kind="objections")
    try:
        objection = services.consents.object(
            subject=enforcer.principal.subject,
            reason=body.reason,
            purpose=body.purpose,
            sector=body.sector,
        )
    except InvalidConsent as exc:
        raise _invalid(exc) from None
    return {
        **public_times(objection.as_public()),
        "effects": services.consents.objection_effects(objection),
    }


@router.get("/objections", summary="My objections and what each one changes")
def list_objections(
    enforcer: Enforcer = Depends(authorize("object", kinds=["citizen"])),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    _own(enforcer, services, kind="objections")
    return {"objections": objection_views(services, enforcer.principal.subject)}


def objection_views(services: Services, idcs: str) -> list[dict[str, Any]]:
    """The person's objections, each with what it changes."""
    return [
        {**public_times(o.as_public()), "effects": services.consents.objection_effects(o)}
        for o in services.consents.objections(idcs)
    ]


# -- my data ----------------------------------------------------------------------------------


@router.get("/data", summary="Everything the registers hold about me")
def my_data(
    enforcer: Enforcer = Depends(authorize("read_own_data", kinds=["citizen"])),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    idcs = enforcer.principal.subject
    return {
        "idcs": idcs,
        **own_person(services, enforcer, idcs),
        "consents": consent_views(services, idcs),
        "objections": [public_times(o.as_public()) for o in services.consents.objections(idcs)],
    }


def own_person(services: Services, enforcer: Enforcer, idcs: str) -> dict[str, Any]:
    """The citizen's RNP record as released to them, and its status: one decision and audit
    entry. Raises :class:`Problem` 404 when the register holds nothing about them."""
    try:
        person = services.register.vault_subject(idcs)
    except (UnknownPerson, PersonErased):
        raise Problem(404, "not-found", "The register holds no data about you.") from None
    fields = sorted(PERSON)
    outcome = _own(enforcer, services, fields=fields, kind="person", vault_subjects=(person,))
    released = services.vault.reveal(person, list(outcome.result.fields), outcome.decisions[person])
    return {"person": released, "status": services.register.status(idcs)}


# -- my score (RSU) ----------------------------------------------------------------------------

Language = Literal["ar", "fr", "en"]


@router.get("/score", summary="My household's score and how each answer contributed to it")
def my_score(
    lang: Language = "fr",
    enforcer: Enforcer = Depends(authorize("read_score", kinds=["citizen"])),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    return own_score(services, enforcer, enforcer.principal.subject, lang)


def own_score(
    services: Services, enforcer: Enforcer, idcs: str, language: Language = "fr"
) -> dict[str, Any]:
    """The body of ``GET /v1/me/score`` for the citizen ``idcs`` (enforcer of the action
    ``read_score``): one policy decision and audit entry, then the vault's explanation of the
    household's score in ``language``. Raises :class:`gateway.problems.Problem` (404 when the
    citizen is in no household, 403 on a denial, 409 when not scored yet)."""
    household = services.households.household_of(idcs)
    if household is None:
        raise Problem(404, "no-household", "You are not a member of a household in the RSU.")
    outcome = enforcer.decide(
        # The owner rule (policies/people.rego): a citizen reads their own household's score.
        resource={"kind": "household", "owner": idcs, "fields": []},
        purpose=None,
        vault_subjects=[household],
        subject_tag=enforcer.subject_tag(idcs),
    ).require_allowed()
    try:
        explanation = services.vault.explain(
            household,
            outcome.decisions[household],
            language=language,
            models=services.households.models,
        )
    except NotScored:
        raise Problem(409, "not-scored", "Your household has not been scored yet.") from None
    return {**score_view(explanation), "decision_id": outcome.decision_id}


def score_view(explanation: Explanation) -> dict[str, Any]:
    """The citizen's own score and how it was computed, largest contributions first."""
    return {
        "score": explanation.score,
        "model": {
            "version": explanation.model_version,
            "digest": explanation.model_digest,
            "illustrative": explanation.illustrative,
        },
        "language": explanation.language,
        "intercept": explanation.intercept,
        "territorial": {
            "label": explanation.territorial.label,
            "region": explanation.territorial.value,
            "contribution": explanation.territorial.contribution,
        },
        "contributions": [
            {
                "variable": c.variable,
                "label": c.label,
                "value": c.value,
                "contribution": c.contribution,
            }
            for c in sorted(
                explanation.contributions, key=lambda c: abs(Decimal(c.contribution)), reverse=True
            )
        ],
    }


@router.post(
    "/score/review",
    status_code=201,
    summary="Ask for a human review of my household's automated score",
)
def request_review(
    enforcer: Enforcer = Depends(authorize("request_review", kinds=["citizen"])),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    review = reviews.request_review(services, enforcer)
    return {
        "id": review.id,
        "about": "rsu_score",
        "status": review.status.value,
        "created_at": rfc3339(review.created_at_ns),
        "due_at": rfc3339(review.due_at_ns),
        "law": reviews.REVIEW_LAW,
    }
