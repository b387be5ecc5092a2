"""The breach register: each workflow step is one transaction that changes the breach only
from the status the step follows, and records the step with the audit entry that allowed it.

Notices to persons go into the consent room's outbox (``consent_outbox``) in the same
transaction as the step, under the person's keyed tag as recipient, so a notice is never lost
nor sent for a step that did not happen; the notifications' delivery job
(gateway/notify/delivery.py) sends them by the channel the person chose.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, cast

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from consent import tables as consent_tables
from consent.outbox import BREACH_NOTICE
from consent.receipts import CONTROLLER
from gateway.breaches import tables
from gateway.breaches.models import (
    CNDP_DEADLINE_NS,
    UNNOTIFIED,
    Assessment,
    Breach,
    BreachNotFound,
    BreachReport,
    BreachStateError,
    InvalidBreach,
    Notices,
    Risk,
    Status,
    Step,
    StepRecord,
)
from gateway.breaches.notification import canonical, notification_document
from gateway.timefmt import rfc3339

log = logging.getLogger("sijill.breaches")
NOTICE_EVENT = BREACH_NOTICE

# sign_document(canonical bytes) -> compact JWS; sign_notice(claims) -> compact JWT.
SignDocument = Callable[[bytes], str]
SignNotice = Callable[[dict[str, Any]], str]


class BreachRegister:
    def __init__(
        self,
        engine: Engine,
        *,
        sign_document: SignDocument | None = None,
        sign_notice: SignNotice | None = None,
        issuer: str = "",
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        """Without the signing functions the register is read-only (``sijill breaches``):
        the steps that sign refuse."""
        self._engine = engine
        self._sign_document = sign_document
        self._sign_notice = sign_notice
        self._issuer = issuer
        # Nanoseconds since the epoch; replaceable so that deadlines can be tested.
        self.clock = clock

    # -- steps -----------------------------------------------------------------------------

    def check(self, report: BreachReport) -> None:
        """Refuse a report no breach could have: detected in the future, or occurring after
        its detection."""
        if report.detected_at_ns > self.clock():
            raise InvalidBreach("detected-in-future", "detected_at lies in the future.")
        if report.occurred_at_ns is not None and report.occurred_at_ns > report.detected_at_ns:
            raise InvalidBreach("occurred-after-detection", "occurred_at lies after detected_at.")

    def register(self, report: BreachReport, step: Step) -> Breach:
        self.check(report)
        now = self.clock()
        breach_id = str(uuid.uuid4())
        with self._engine.begin() as conn:
            conn.execute(
                insert(tables.breaches).values(
                    id=breach_id,
                    title=report.title,
                    description=report.description,
                    occurred_at_ns=report.occurred_at_ns,
                    detected_at_ns=report.detected_at_ns,
                    registered_at_ns=now,
                    person_categories=json.dumps(list(report.person_categories)),
                    persons_affected=report.persons_affected,
                    record_categories=json.dumps(list(report.record_categories)),
                    records_affected=report.records_affected,
                    likely_consequences=report.likely_consequences,
                    measures=report.measures,
                    risk=None,
                    status="registered",
                    cndp_deadline_ns=report.detected_at_ns + CNDP_DEADLINE_NS,
                    persons_notified=0,
                )
            )
            self._record(conn, breach_id, "register", step, now)
        return self.get(breach_id)

    def assess(self, breach_id: str, assessment: Assessment, step: Step) -> Breach:
        values: dict[str, Any] = {"risk": assessment.risk, "status": "assessed"}
        if assessment.likely_consequences is not None:
            values["likely_consequences"] = assessment.likely_consequences
        if assessment.measures is not None:
            values["measures"] = assessment.measures
        with self._engine.begin() as conn:
            self._advance(conn, breach_id, ("registered", "assessed"), values, "assessed")
            self._record(conn, breach_id, "assess", step, self.clock())
        return self.get(breach_id)

    def notify_cndp(self, breach_id: str, step: Step, *, delay_reason: str | None) -> Breach:
        """Sign the notification and move the breach to ``cndp_notified``. Past the deadline
        the notification must say why it is late (GDPR art. 33(1))."""
        now = self.clock()
        breach = self.get(breach_id)
        if breach.status != "assessed":
            raise _wrong_status(breach.status, "assessed", "notify the CNDP")
        if now > breach.cndp_deadline_ns and not delay_reason:
            raise InvalidBreach(
                "delay-reason-required",
                "The 72 hours since detection have passed: the notification must give the "
                "reasons for the delay (delay_reason).",
            )
        document = notification_document(
            breach,
            notification_id=str(uuid.uuid4()),
            issuer=self._issuer,
            notified_at_ns=now,
            step=step,
            delay_reason=delay_reason,
        )
        if self._sign_document is None:
            raise RuntimeError("this breach register was opened without a signing key")
        signed = self._sign_document(canonical(document))
        values = {
            "status": "cndp_notified",
            "cndp_notified_at_ns": now,
            "cndp_notification": signed,
            "delay_reason": delay_reason,
        }
        with self._engine.begin() as conn:
            self._advance(conn, breach_id, ("assessed",), values, "cndp_notified")
            self._record(conn, breach_id, "notify_cndp", step, now)
        return self.get(breach_id)

    def notify_persons(self, breach_id: str, recipients: Sequence[str], step: Step) -> Notices:
        """One notice per person not yet notified of this breach, queued in the outbox under
        their keyed tag (``recipients``); the notice itself names no one."""
        now = self.clock()
        breach = self.get(breach_id)
        allowed: tuple[Status, ...] = ("cndp_notified", "persons_notified")
        if breach.status not in allowed:
            raise _wrong_status(breach.status, "cndp_notified", "notify the persons")
        if self._sign_notice is None:
            raise RuntimeError("this breach register was opened without a signing key")
        body = self._sign_notice(_notice(breach, now))
        wanted = sorted(set(recipients))
        n = tables.breach_notices
        try:
            with self._engine.begin() as conn:
                done = set(
                    conn.execute(
                        select(n.c.recipient).where(
                            and_(n.c.breach_id == breach_id, n.c.recipient.in_(wanted))
                        )
                    ).scalars()
                )
                fresh = [r for r in wanted if r not in done]
                if fresh:
                    conn.execute(
                        insert(n),
                        [
                            {"breach_id": breach_id, "recipient": r, "notified_at_ns": now}
                            for r in fresh
                        ],
                    )
                    conn.execute(
                        insert(consent_tables.outbox),
                        [
                            {
                                "recipient": r,
                                "event": NOTICE_EVENT,
                                "body": body,
                                "attempts": 0,
                                "next_attempt_ns": now,
                            }
                            for r in fresh
                        ],
                    )
                values = {
                    "status": "persons_notified",
                    "persons_notified": tables.breaches.c.persons_notified + len(fresh),
                }
                self._advance(conn, breach_id, allowed, values, "persons_notified")
                self._record(conn, breach_id, "notify_persons", step, now)
        except IntegrityError:
            # Another batch notified one of these persons between our read and our write.
            raise BreachStateError(
                "Another notice batch for this breach ran at the same time; send again.",
                breach.status,
            ) from None
        return Notices(notified=len(fresh), already_notified=len(done), total=len(wanted))

    def close(self, breach_id: str, step: Step, *, summary: str | None) -> Breach:
        """Close a breach once its notifications are made: the persons' too when the risk to
        them is high (GDPR art. 34(1))."""
        breach = self.get(breach_id)
        allowed: tuple[Status, ...] = ("persons_notified",)
        if breach.risk != "high":
            allowed = ("cndp_notified", "persons_notified")
        if breach.status not in allowed:
            expected = "persons_notified" if breach.risk == "high" else "cndp_notified"
            raise _wrong_status(breach.status, expected, "close the breach")
        now = self.clock()
        values = {"status": "closed", "closed_at_ns": now, "closure_summary": summary}
        with self._engine.begin() as conn:
            self._advance(conn, breach_id, allowed, values, "closed")
            self._record(conn, breach_id, "close", step, now)
        return self.get(breach_id)

    # -- reading ---------------------------------------------------------------------------

    def get(self, breach_id: str) -> Breach:
        b, s = tables.breaches, tables.breach_steps
        with self._engine.connect() as conn:
            row = conn.execute(select(b).where(b.c.id == breach_id)).mappings().first()
            if row is None:
                raise BreachNotFound("No breach with this id.")
            steps = conn.execute(
                select(s).where(s.c.breach_id == breach_id).order_by(s.c.id)
            ).mappings()
            records = tuple(
                StepRecord(r["step"], r["at_ns"], r["actor"], r["audit_index"], r["decision_id"])
                for r in steps
            )
        return _breach(row, records)

    def list(self, *, status: Status | None = None, overdue: bool | None = None) -> list[Breach]:
        """Breaches, newest detection first; ``overdue``: only those past the 72 hours with
        the CNDP not notified (or, False, only the others)."""
        b = tables.breaches
        query = select(b).order_by(b.c.detected_at_ns.desc(), b.c.id)
        if status is not None:
            query = query.where(b.c.status == status)
        if overdue is not None:
            late = and_(b.c.status.in_(UNNOTIFIED), b.c.cndp_deadline_ns < self.clock())
            query = query.where(late if overdue else ~late)
        with self._engine.connect() as conn:
            return [_breach(r, ()) for r in conn.execute(query).mappings()]

    def overdue_count(self) -> int:
        b = tables.breaches
        query = select(func.count()).where(
            and_(b.c.status.in_(UNNOTIFIED), b.c.cndp_deadline_ns < self.clock())
        )
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def open_count(self) -> int:
        b = tables.breaches
        query = select(func.count()).where(b.c.status != "closed")
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    # -- internals -------------------------------------------------------------------------

    def _advance(
        self,
        conn: Connection,
        breach_id: str,
        allowed: Sequence[Status],
        values: Mapping[str, Any],
        target: Status,
    ) -> None:
        """Change the breach only from an ``allowed`` status (compare-and-set: of two
        officers taking the same step at once, one wins and the other is told)."""
        b = tables.breaches
        changed = conn.execute(
            update(b).where(and_(b.c.id == breach_id, b.c.status.in_(allowed))).values(**values)
        ).rowcount
        if changed == 1:
            return
        current = conn.execute(select(b.c.status).where(b.c.id == breach_id)).scalar()
        if current is None:
            raise BreachNotFound("No breach with this id.")
        raise _wrong_status(str(current), allowed[0], f"move the breach to {target}")

    @staticmethod
    def _record(conn: Connection, breach_id: str, name: str, step: Step, now: int) -> None:
        conn.execute(
            insert(tables.breach_steps).values(
                breach_id=breach_id,
                step=name,
                at_ns=now,
                actor=step.actor,
                audit_index=step.audit_index,
                decision_id=step.decision_id,
            )
        )


def _wrong_status(current: str, needed: str, what: str) -> BreachStateError:
    return BreachStateError(
        f"Cannot {what}: the breach is {current}, the step needs {needed}.", current
    )


def _notice(breach: Breach, now_ns: int) -> dict[str, Any]:
    """What a person is told (GDPR art. 34(2)): the nature of the breach in plain words, the
    contact point, the likely consequences and the measures. No name, no identifier: the
    outbox row addresses the notice, the notice itself is the same for everyone."""
    return {
        "event": NOTICE_EVENT,
        "breach": breach.id,
        "title": breach.title,
        "detected_at": rfc3339(breach.detected_at_ns),
        "likely_consequences": breach.likely_consequences,
        "measures": breach.measures,
        "contact": {
            "controller": CONTROLLER["piiController"],
            "dpo": CONTROLLER["contact"],
            "email": CONTROLLER["email"],
            "phone": CONTROLLER["phone"],
        },
        "iat": now_ns // 1_000_000_000,
    }


def _breach(row: Mapping[Any, Any], steps: tuple[StepRecord, ...]) -> Breach:
    return Breach(
        id=row["id"],
        title=row["title"],
        description=row["description"],
        occurred_at_ns=row["occurred_at_ns"],
        detected_at_ns=row["detected_at_ns"],
        registered_at_ns=row["registered_at_ns"],
        person_categories=tuple(json.loads(row["person_categories"])),
        persons_affected=row["persons_affected"],
        record_categories=tuple(json.loads(row["record_categories"])),
        records_affected=row["records_affected"],
        likely_consequences=row["likely_consequences"],
        measures=row["measures"],
        risk=cast("Risk | None", row["risk"]),
        status=cast("Status", row["status"]),
        cndp_deadline_ns=row["cndp_deadline_ns"],
        cndp_notified_at_ns=row["cndp_notified_at_ns"],
        cndp_notification=row["cndp_notification"],
        delay_reason=row["delay_reason"],
        persons_notified=row["persons_notified"],
        closed_at_ns=row["closed_at_ns"],
        closure_summary=row["closure_summary"],
        steps=steps,
    )


class BreachMetrics(Collector):
    """``/metrics``: breaches past the CNDP deadline, and breaches open, read from the store
    at scrape time so that every worker process reports the shared register."""

    def __init__(self, register: BreachRegister) -> None:
        self._register = register

    def collect(self) -> Iterator[Metric]:
        try:
            overdue = self._register.overdue_count()
            still_open = self._register.open_count()
        except Exception as exc:
            # A scrape must not fail with the store: /readyz reports it, the gauges go absent.
            log.warning("breach metrics unavailable", extra={"error_class": type(exc).__name__})
            return
        yield GaugeMetricFamily(
            "sijill_breaches_overdue",
            "Breaches past the 72 hours from detection with the CNDP not yet notified",
            overdue,
        )
        yield GaugeMetricFamily("sijill_breaches_open", "Breaches not yet closed", still_open)
