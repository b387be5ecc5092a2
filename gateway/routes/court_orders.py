"""Law-enforcement queries under court control (docs/privacy.md, "Law-enforcement queries").

``/v1/court-orders``: the register of court orders, for an officer of the authorised office
signed in through the console (``court_order:manage``; the policy refuses a machine client).
The officer names the person by IDCS; the register keeps their keyed audit tag and the
law-enforcement client's sector pseudonym for them, never the IDCS.

``/v1/law-enforcement``: a law-enforcement client (``court_order:query``) learns its pseudonym
for the person an order names, and queries that person's fields under the order. The gateway
looks the order up and hands it to the policy, which decides everything (for this client, in
force, the person, the purpose, the fields, the embargo within the policy's bound). Every
decision is appended to the audit log at once, naming the order and its embargo: auditors see
it throughout, the person's own view (access log, receipts, export, notices) when the embargo
ends.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from gateway.admission import authorize
from gateway.authz import Enforcer, Outcome
from gateway.court_orders import (
    REFERENCE_PATTERN,
    CourtOrder,
    CourtOrderExists,
    CourtOrderNotFound,
    UnderOrder,
)
from gateway.params import Idcs, StorableAwareTime
from gateway.problems import Problem, responses
from gateway.questions import PERSON_FIELDS, Resource
from gateway.responses import model_json
from gateway.routes.agency import (
    PseudonymPath,
    Purpose,
    QueryOut,
    find,
    known_fields,
    query_answer,
)
from gateway.services import Services, get_services
from gateway.timefmt import rfc3339, to_ns
from identity import PersonErased, UnknownPerson

router = APIRouter(
    prefix="/v1/court-orders",
    tags=["court orders"],
    responses=responses(400, 401, 403, 408, 413, 422, 503),
)
queries = APIRouter(
    prefix="/v1/law-enforcement",
    tags=["law enforcement"],
    responses=responses(400, 401, 403, 404, 408, 413, 422, 429, 503),
)
Reference = Annotated[str, Field(pattern=REFERENCE_PATTERN, description="The court's reference")]
ReferencePath = Annotated[str, Path(pattern=REFERENCE_PATTERN)]
FieldName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
AppServices = Annotated[Services, Depends(get_services)]


class CourtOrderIn(BaseModel):
    """An order as the court issued it (no names: the person is their IDCS)."""

    model_config = ConfigDict(extra="forbid")
    reference: Reference
    court: Annotated[str, Field(min_length=2, max_length=200)]
    issued_at: StorableAwareTime = Field(description="RFC 3339 with an offset")
    client_id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{1,63}$")] = Field(
        description="The law-enforcement client the order is for"
    )
    person: Idcs = Field(description="The IDCS of the person the order names")
    fields: Annotated[list[FieldName], Field(min_length=1, max_length=32)]
    purposes: Annotated[list[Purpose], Field(min_length=1, max_length=8)]
    valid_until: StorableAwareTime = Field(description="No query under the order after")
    embargo_until: StorableAwareTime = Field(
        description="Until when the person's own view omits the accesses (bounded by policy)"
    )


class CourtOrderOut(BaseModel):
    reference: str
    court: str
    issued_at: str
    office: str
    officer: str
    client_id: str
    fields: list[str]
    purposes: list[str]
    valid_until: str
    embargo_until: str
    entered_at: str
    audit_index: int = Field(description="The audit entry that recorded its entry")
    revoked_at: str | None
    revoked_by: str | None
    decision_id: str = Field(description="The policy decision behind this answer")


class CourtOrderList(BaseModel):
    court_orders: list[CourtOrderOut]
    decision_id: str


class SubjectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: Purpose


class SubjectOut(BaseModel):
    pseudonym: str = Field(description="This client's sector pseudonym for the order's person")
    decision_id: str


class OrderQueryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fields: list[FieldName] = Field(min_length=1, max_length=32)
    purpose: Purpose
    court_order: Reference = Field(description="The reference of the order the query is made under")


def _view(order: CourtOrder, decision_id: str) -> CourtOrderOut:
    revoked = order.revocation
    return CourtOrderOut(
        reference=order.reference,
        court=order.court,
        issued_at=rfc3339(order.issued_at_ns),
        office=order.office,
        officer=order.officer,
        client_id=order.client_id,
        fields=list(order.fields),
        purposes=list(order.purposes),
        valid_until=rfc3339(order.valid_until_ns),
        embargo_until=rfc3339(order.embargo_until_ns),
        entered_at=rfc3339(order.entered_at_ns),
        audit_index=order.audit_index,
        revoked_at=rfc3339(revoked.at_ns) if revoked else None,
        revoked_by=revoked.by if revoked else None,
        decision_id=decision_id,
    )


def _not_found() -> Problem:
    return Problem(404, "court-order-not-found", "No court order under this reference.")


def _refused(outcome: Outcome) -> Problem:
    """A refused law-enforcement decision: ``court-order-required`` when the client named no
    order of its own, ``court-order-refused`` (with the reason codes) otherwise."""
    reasons = outcome.result.reasons
    kind = "court-order-required" if "court_order_required" in reasons else "court-order-refused"
    detail = (
        "A law-enforcement query needs a court order of the register made out to this client."
        if kind == "court-order-required"
        else "The court order does not allow this query."
    )
    return Problem(403, kind, detail, reasons=reasons, decision_id=outcome.decision_id)


def _own_order(services: Services, enforcer: Enforcer, reference: str) -> CourtOrder | None:
    """The order under ``reference`` if it is made out to this client; another client's is
    no order at all to it (an order's existence is no one else's to learn)."""
    order = services.court_orders.find(reference)
    if order is None or order.client_id != enforcer.principal.client_id:
        return None
    return order


# -- the register (the authorised office) ---------------------------------------------------


@router.post("", status_code=201, response_model=CourtOrderOut, summary="Enter a court order")
def enter(
    body: CourtOrderIn,
    services: AppServices,
    enforcer: Enforcer = Depends(authorize("register_court_order", kinds=["office"])),
) -> CourtOrderOut:
    client = services.oauth.registry.get(body.client_id)
    if client is None or client.kind != "law_enforcement":
        raise Problem(
            422,
            "not-a-law-enforcement-client",
            "client_id names no registered law-enforcement client.",
        )
    try:
        services.register.status(body.person)
    except (UnknownPerson, PersonErased):
        raise Problem(422, "unknown-person", "The person is not in the register.") from None
    if services.court_orders.find(body.reference) is not None:
        raise Problem(409, "court-order-exists", "An order under this reference is registered.")
    tag = enforcer.subject_tag(body.person)
    order = CourtOrder(
        reference=body.reference,
        court=body.court,
        issued_at_ns=to_ns(body.issued_at),
        office=enforcer.principal.client_id,
        officer=enforcer.principal.actor or "",
        client_id=client.client_id,
        subject=tag,
        pseudonym="",  # made once the decision allows the order: nothing written before
        fields=tuple(sorted(set(body.fields))),
        purposes=tuple(sorted(set(body.purposes))),
        valid_until_ns=to_ns(body.valid_until),
        embargo_until_ns=to_ns(body.embargo_until),
    )
    # The entry is the person's (their tag), under the order's own embargo: that an order
    # names them is theirs to learn when the embargo ends, not before.
    outcome = enforcer.decide(
        resource={"kind": "court_order"},
        purpose=None,
        subject_tag=tag,
        under=UnderOrder(order),
    ).require_allowed()
    pseudonym = services.pseudonyms.pseudonym_for(body.person, client.sector)
    try:
        entered = services.court_orders.enter(
            replace(order, pseudonym=str(pseudonym)), outcome.receipt.index
        )
    except CourtOrderExists:
        raise Problem(
            409, "court-order-exists", "An order under this reference is registered."
        ) from None
    return _view(entered, outcome.decision_id)


@router.get("", response_model=CourtOrderList, summary="The register of court orders")
def list_orders(
    services: AppServices,
    enforcer: Enforcer = Depends(authorize("read_court_orders", kinds=["office"])),
    client_id: Annotated[
        str | None,
        Query(pattern=r"^[a-z0-9][a-z0-9._-]{1,63}$", description="Only this client's orders"),
    ] = None,
) -> CourtOrderList:
    outcome = enforcer.decide(resource={"kind": "court_order"}, purpose=None).require_allowed()
    orders = services.court_orders.list(client_id=client_id)
    return CourtOrderList(
        court_orders=[_view(o, outcome.decision_id) for o in orders],
        decision_id=outcome.decision_id,
    )


@router.get(
    "/{reference}", response_model=CourtOrderOut, responses=responses(404), summary="One order"
)
def get_order(
    reference: ReferencePath,
    services: AppServices,
    enforcer: Enforcer = Depends(authorize("read_court_orders", kinds=["office"])),
) -> CourtOrderOut:
    outcome = enforcer.decide(resource={"kind": "court_order"}, purpose=None).require_allowed()
    try:
        return _view(services.court_orders.get(reference), outcome.decision_id)
    except CourtOrderNotFound:
        raise _not_found() from None


@router.post(
    "/{reference}/revoke",
    response_model=CourtOrderOut,
    responses=responses(404),
    summary="Revoke a court order: no query under it after",
)
def revoke(
    reference: ReferencePath,
    services: AppServices,
    enforcer: Enforcer = Depends(authorize("revoke_court_order", kinds=["office"])),
) -> CourtOrderOut:
    order = services.court_orders.find(reference)
    if order is None:
        raise _not_found()
    outcome = enforcer.decide(
        resource={"kind": "court_order"},
        purpose=None,
        subject_tag=order.subject,
        under=UnderOrder(order),
    ).require_allowed()
    revoked = services.court_orders.revoke(reference, enforcer.actor()["id"], outcome.receipt.index)
    return _view(revoked, outcome.decision_id)


# -- queries (the law-enforcement client) ----------------------------------------------------


@queries.post(
    "/court-orders/{reference}/subject",
    response_model=SubjectOut,
    summary="A court order → this client's pseudonym for the person it names",
)
def order_subject(
    reference: ReferencePath,
    body: SubjectIn,
    services: AppServices,
    enforcer: Enforcer = Depends(authorize("court_order_subject", kinds=["law_enforcement"])),
) -> Response:
    order = _own_order(services, enforcer, reference)
    outcome = enforcer.decide(
        resource={"kind": "person", "fields": [], "subject": order.subject if order else ""},
        purpose=body.purpose,
        subject_tag=order.subject if order else None,
        under=UnderOrder(order),
    )
    if not outcome.allowed or order is None:
        raise _refused(outcome)
    current = services.pseudonyms.translate(enforcer.principal.sector, [order.pseudonym])
    pseudonym = current.get(order.pseudonym)
    if pseudonym is None:
        # The person was erased, or the key the order's pseudonym was made under retired.
        raise Problem(404, "not-found", "No such person for this client.")
    return model_json(SubjectOut(pseudonym=str(pseudonym), decision_id=outcome.decision_id))


@queries.post(
    "/persons/{pseudonym}/query",
    response_model=QueryOut,
    summary="Fields + purpose + court order → the released fields, the withheld ones and why",
)
def order_query(
    pseudonym: PseudonymPath,
    body: OrderQueryIn,
    services: AppServices,
    enforcer: Enforcer = Depends(authorize("court_order_query", kinds=["law_enforcement"])),
) -> Response:
    requested = sorted(set(body.fields))
    resource: Resource = {"kind": "person", "fields": requested}
    known_fields(requested)
    order = _own_order(services, enforcer, body.court_order)
    found = find(services, enforcer, pseudonym)
    if found is None:
        enforcer.refuse_unknown(resource=resource, purpose=body.purpose)
    assert found is not None  # refuse_unknown raises
    tag = enforcer.subject_tag(found.idcs)
    outcome = enforcer.decide(
        resource={**resource, "subject": tag},
        purpose=body.purpose,
        vault_subjects={found.person: PERSON_FIELDS},
        subject_tag=tag,
        under=UnderOrder(order),
    )
    if not outcome.allowed:
        raise _refused(outcome)
    released = enforcer.reveal(outcome, requested)
    return model_json(query_answer(outcome, requested, released))
