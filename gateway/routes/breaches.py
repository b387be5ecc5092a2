"""The breach register over HTTP (docs/privacy.md, "Breach handling"): register → assess →
notify the CNDP → notify the persons affected → close, for a data-protection officer of an
office signed in through the console (``breach:manage``; the policy refuses a machine
client). Each step is one policy decision, appended to the audit log before the register
changes or anything is returned; the step then records that entry's index."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from gateway.admission import authorize
from gateway.authz import Enforcer
from gateway.breaches import (
    FORMAT,
    Assessment,
    Breach,
    BreachNotFound,
    BreachReport,
    BreachStateError,
    InvalidBreach,
    Step,
    document_of,
)
from gateway.params import Idcs, StorableAwareTime
from gateway.problems import Problem, responses
from gateway.services import Services, get_services
from gateway.timefmt import rfc3339, to_ns
from identity import PersonErased, UnknownPerson

router = APIRouter(
    prefix="/v1/breaches",
    tags=["breach handling"],
    responses=responses(400, 401, 403, 408, 413, 422, 503),
)
BreachId = Annotated[
    str,
    Path(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
]
Label = Annotated[str, Field(min_length=1, max_length=64)]
Text = Annotated[str, Field(min_length=1, max_length=4000)]
Count = Annotated[int, Field(ge=0, le=100_000_000_000)]
StatusName = Literal["registered", "assessed", "cndp_notified", "persons_notified", "closed"]
# A batch of persons per request: the body stays within the API's size limit.
MAX_PERSONS = 500


class BreachIn(BaseModel):
    """What is known of the breach when it is registered (GDPR art. 33(3))."""

    model_config = ConfigDict(extra="forbid")
    title: Annotated[str, Field(min_length=1, max_length=200)]
    description: Text = Field(description="What happened (no names, no identifiers)")
    detected_at: StorableAwareTime = Field(description="RFC 3339 with an offset")
    occurred_at: StorableAwareTime | None = Field(
        default=None, description="RFC 3339 with an offset, if known"
    )
    person_categories: Annotated[list[Label], Field(min_length=1, max_length=20)]
    persons_affected: Count = Field(description="Approximate number of persons")
    record_categories: Annotated[list[Label], Field(min_length=1, max_length=40)]
    records_affected: Count = Field(description="Approximate number of records")
    likely_consequences: Text
    measures: Text = Field(description="Measures taken or proposed")

    def report(self) -> BreachReport:
        return BreachReport(
            title=self.title,
            description=self.description,
            detected_at_ns=to_ns(self.detected_at),
            occurred_at_ns=to_ns(self.occurred_at) if self.occurred_at is not None else None,
            person_categories=tuple(self.person_categories),
            persons_affected=self.persons_affected,
            record_categories=tuple(self.record_categories),
            records_affected=self.records_affected,
            likely_consequences=self.likely_consequences,
            measures=self.measures,
        )


class AssessmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    risk: Literal["unlikely", "risk", "high"] = Field(
        description="The risk to the persons (GDPR art. 33(1), 34(1)); high: they are told"
    )
    likely_consequences: Text | None = None
    measures: Text | None = None


class CndpNotificationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    delay_reason: Text | None = Field(
        default=None, description="Required when the 72 hours from detection have passed"
    )


class PersonNoticesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    persons: Annotated[list[Idcs], Field(min_length=1, max_length=MAX_PERSONS)] = Field(
        description="IDCS of the persons affected; each is told once per breach"
    )


class ClosureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    summary: Text | None = None


class StepOut(BaseModel):
    step: str
    at: str = Field(description="RFC 3339, UTC")
    actor: str = Field(description="The office client and the officer, as the audit log has it")
    audit_index: int = Field(description="The audit entry that recorded the decision")
    decision_id: str


class BreachOut(BaseModel):
    id: str
    status: StatusName
    title: str
    description: str
    occurred_at: str | None
    detected_at: str
    registered_at: str
    person_categories: list[str]
    persons_affected: int
    record_categories: list[str]
    records_affected: int
    likely_consequences: str
    measures: str
    risk: str | None
    persons_notice_required: bool | None = Field(description="Whether the risk is high")
    cndp_deadline: str = Field(description="72 hours after detection")
    overdue: bool = Field(description="Past the deadline, the CNDP not notified")
    cndp_notified_at: str | None
    notified_late: bool | None
    delay_reason: str | None
    persons_notified: int
    closed_at: str | None
    closure_summary: str | None
    steps: list[StepOut] | None = Field(default=None, description="In the detail view only")
    decision_id: str = Field(description="The policy decision behind this answer")


class BreachList(BaseModel):
    breaches: list[BreachOut]
    decision_id: str


class CndpNotificationOut(BaseModel):
    format: str = Field(description=f"{FORMAT} (docs/privacy.md)")
    jws: str = Field(description="Compact JWS over the canonical document (RFC 8785, RFC 7515)")
    document: dict[str, Any]
    decision_id: str


class NoticesOut(BaseModel):
    notified: int = Field(description="Persons notified now")
    already_notified: int = Field(description="Persons notified of this breach before")
    persons_notified: int = Field(description="Persons notified of this breach in all")
    status: StatusName
    decision_id: str


def _step(enforcer: Enforcer) -> Step:
    """The step's policy decision, on the record before anything changes or is returned."""
    outcome = enforcer.decide(resource={"kind": "breach"}, purpose=None).require_allowed()
    actor = enforcer.actor()["id"]
    return Step(actor=actor, audit_index=outcome.receipt.index, decision_id=outcome.decision_id)


def _problem(exc: Exception) -> Problem:
    if isinstance(exc, BreachNotFound):
        return Problem(404, "breach-not-found", str(exc))
    if isinstance(exc, BreachStateError):
        return Problem(409, "breach-state", str(exc), status_now=exc.status)
    assert isinstance(exc, InvalidBreach)
    return Problem(422, exc.code, str(exc))


def _time(ns: int | None) -> str | None:
    return rfc3339(ns) if ns is not None else None


def _view(breach: Breach, now_ns: int, decision_id: str, *, steps: bool = False) -> BreachOut:
    return BreachOut(
        id=breach.id,
        status=breach.status,
        title=breach.title,
        description=breach.description,
        occurred_at=_time(breach.occurred_at_ns),
        detected_at=rfc3339(breach.detected_at_ns),
        registered_at=rfc3339(breach.registered_at_ns),
        person_categories=list(breach.person_categories),
        persons_affected=breach.persons_affected,
        record_categories=list(breach.record_categories),
        records_affected=breach.records_affected,
        likely_consequences=breach.likely_consequences,
        measures=breach.measures,
        risk=breach.risk,
        persons_notice_required=breach.persons_notice_required,
        cndp_deadline=rfc3339(breach.cndp_deadline_ns),
        overdue=breach.overdue(now_ns),
        cndp_notified_at=_time(breach.cndp_notified_at_ns),
        notified_late=breach.notified_late,
        delay_reason=breach.delay_reason,
        persons_notified=breach.persons_notified,
        closed_at=_time(breach.closed_at_ns),
        closure_summary=breach.closure_summary,
        steps=[
            StepOut(
                step=s.step,
                at=rfc3339(s.at_ns),
                actor=s.actor,
                audit_index=s.audit_index,
                decision_id=s.decision_id,
            )
            for s in breach.steps
        ]
        if steps
        else None,
        decision_id=decision_id,
    )


def _export(breach: Breach, decision_id: str) -> CndpNotificationOut:
    if breach.cndp_notification is None:
        raise Problem(404, "not-notified", "The CNDP has not been notified of this breach yet.")
    return CndpNotificationOut(
        format=FORMAT,
        jws=breach.cndp_notification,
        document=document_of(breach.cndp_notification),
        decision_id=decision_id,
    )


AppServices = Annotated[Services, Depends(get_services)]


@router.post("", status_code=201, response_model=BreachOut, summary="Register a breach")
def register(
    body: BreachIn,
    services: AppServices,
    enforcer: Enforcer = Depends(authorize("register_breach", kinds=["office"])),
) -> BreachOut:
    report = body.report()
    try:
        services.breaches.check(report)  # a report no breach could have changes nothing
        step = _step(enforcer)
        breach = services.breaches.register(report, step)
    except InvalidBreach as exc:
        raise _problem(exc) from None
    return _view(breach, services.breaches.clock(), step.decision_id, steps=True)


@router.get("", response_model=BreachList, summary="The breach register")
def list_breaches(
    services: AppServices,
    enforcer: Enforcer = Depends(authorize("read_breaches", kinds=["office"])),
    status: Annotated[StatusName | None, Query(description="Only breaches in this status")] = None,
    overdue: Annotated[
        bool | None, Query(description="Only breaches past the CNDP deadline (or, false, not)")
    ] = None,
) -> BreachList:
    step = _step(enforcer)
    now = services.breaches.clock()
    chosen = services.breaches.list(status=status, overdue=overdue)
    return BreachList(
        breaches=[_view(b, now, step.decision_id) for b in chosen], decision_id=step.decision_id
    )


@router.get(
    "/{breach_id}", response_model=BreachOut, responses=responses(404), summary="One breach"
)
def get_breach(
    breach_id: BreachId,
    services: AppServices,
    enforcer: Enforcer = Depends(authorize("read_breaches", kinds=["office"])),
) -> BreachOut:
    step = _step(enforcer)
    try:
        breach = services.breaches.get(breach_id)
    except BreachNotFound as exc:
        raise _problem(exc) from None
    return _view(breach, services.breaches.clock(), step.decision_id, steps=True)


@router.post(
    "/{breach_id}/assessment",
    response_model=BreachOut,
    responses=responses(404, 409),
    summary="Record the risk to the persons",
)
def assess(
    breach_id: BreachId,
    body: AssessmentIn,
    services: AppServices,
    enforcer: Enforcer = Depends(authorize("assess_breach", kinds=["office"])),
) -> BreachOut:
    step = _step(enforcer)
    assessment = Assessment(body.risk, body.likely_consequences, body.measures)
    try:
        breach = services.breaches.assess(breach_id, assessment, step)
    except (BreachNotFound, BreachStateError) as exc:
        raise _problem(exc) from None
    return _view(breach, services.breaches.clock(), step.decision_id, steps=True)


@router.post(
    "/{breach_id}/cndp-notification",
    status_code=201,
    response_model=CndpNotificationOut,
    responses=responses(404, 409),
    summary="Notify the CNDP: the signed notification",
)
def notify_cndp(
    breach_id: BreachId,
    body: CndpNotificationIn,
    services: AppServices,
    enforcer: Enforcer = Depends(authorize("notify_cndp", kinds=["office"])),
) -> CndpNotificationOut:
    step = _step(enforcer)
    try:
        breach = services.breaches.notify_cndp(breach_id, step, delay_reason=body.delay_reason)
    except (BreachNotFound, BreachStateError, InvalidBreach) as exc:
        raise _problem(exc) from None
    return _export(breach, step.decision_id)


@router.get(
    "/{breach_id}/cndp-notification",
    response_model=CndpNotificationOut,
    responses=responses(404),
    summary="The signed notification sent to the CNDP",
)
def cndp_notification(
    breach_id: BreachId,
    services: AppServices,
    enforcer: Enforcer = Depends(authorize("read_breaches", kinds=["office"])),
) -> CndpNotificationOut:
    step = _step(enforcer)
    try:
        breach = services.breaches.get(breach_id)
    except BreachNotFound as exc:
        raise _problem(exc) from None
    return _export(breach, step.decision_id)


@router.post(
    "/{breach_id}/person-notices",
    response_model=NoticesOut,
    responses=responses(404, 409),
    summary="Notify persons affected, through the notification outbox",
)
def notify_persons(
    breach_id: BreachId,
    body: PersonNoticesIn,
    services: AppServices,
    enforcer: Enforcer = Depends(authorize("notify_persons", kinds=["office"])),
) -> NoticesOut:
    step = _step(enforcer)
    unknown = []
    for position, idcs in enumerate(body.persons):
        try:
            services.register.status(idcs)
        except (UnknownPerson, PersonErased):
            unknown.append(position)
    if unknown:
        # Positions in the list, never the identifiers themselves (problems.py).
        raise Problem(
            422,
            "unknown-person",
            "Some persons are not in the register; no one was notified.",
            positions=unknown,
        )
    tags = [services.vault.subject_tag(idcs) for idcs in body.persons]
    try:
        notices = services.breaches.notify_persons(breach_id, tags, step)
        breach = services.breaches.get(breach_id)
    except (BreachNotFound, BreachStateError) as exc:
        raise _problem(exc) from None
    return NoticesOut(
        notified=notices.notified,
        already_notified=notices.already_notified,
        persons_notified=breach.persons_notified,
        status=breach.status,
        decision_id=step.decision_id,
    )


@router.post(
    "/{breach_id}/closure",
    response_model=BreachOut,
    responses=responses(404, 409),
    summary="Close a breach whose notifications are made",
)
def close(
    breach_id: BreachId,
    body: ClosureIn,
    services: AppServices,
    enforcer: Enforcer = Depends(authorize("close_breach", kinds=["office"])),
) -> BreachOut:
    step = _step(enforcer)
    try:
        breach = services.breaches.close(breach_id, step, summary=body.summary)
    except (BreachNotFound, BreachStateError) as exc:
        raise _problem(exc) from None
    return _view(breach, services.breaches.clock(), step.decision_id, steps=True)
