"""The erasure desk: requests, the second officer's decision, and the carry-out.

A carry-out is a fixed list of steps (:func:`gateway.erasure.steps.person_steps`), each
idempotent, each audited and written to ``erasure_steps`` once done: a process that dies
between two steps leaves the request ``carrying_out`` with the steps it finished, and the next
carry-out (the approval retried, ``sijill rnp erasure approve``, or the retention run) does the
rest. The request leaves ``carrying_out`` only when every step is written.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from typing import Any, cast

from sqlalchemy import Engine, and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from audit import AuditEntry, AuditLog
from audit.entry import Actor
from gateway.erasure import tables
from gateway.erasure.models import (
    ErasureIncomplete,
    ErasureNotFound,
    ErasurePending,
    ErasureRequest,
    ErasureStateError,
    Ground,
    InvalidErasure,
    Signed,
    Status,
    StepDone,
)
from identity import PersonErased, Register, UnknownPerson
from policies.registry import action_legal_basis

log = logging.getLogger("sijill.erasure")

# The audit action of each carry-out step (the decision that allowed it is approve_erasure's
# entry, or the retention run's).
STEP_ACTION = "erasure_step"
_IDCS = re.compile(r"^[2-9][0-9]{9}$")

# name, and the step itself: given the IDCS, does its part (idempotently) and says how many
# items it removed.
StepFn = Callable[[str], int]


class ErasureDesk:
    def __init__(
        self,
        engine: Engine,
        register: Register,
        steps: Sequence[tuple[str, StepFn]],
        audit: AuditLog,
        subject_tag: Callable[[str], str],
        *,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._engine = engine
        self._register = register
        self.steps = list(steps)
        self._audit = audit
        self._tag = subject_tag
        self.clock = clock

    # -- requesting ------------------------------------------------------------------------

    def check(self, idcs: str, ground: Ground, reference: str) -> None:
        """Whether the ground can hold for this person: :class:`identity.UnknownPerson` or
        :class:`identity.PersonErased` for no one to erase, :class:`InvalidErasure` else."""
        status = self._register.status(idcs)
        if status == "erased":
            raise PersonErased()
        if ground == "duplicate_enrolment":
            # Law 72.18 art. 8: one IDCS a person; the duplicate goes, the kept one stays.
            kept = None
            if _IDCS.match(reference) and reference != idcs:
                with suppress(UnknownPerson):
                    kept = self._register.status(reference)
            if kept is None or kept == "erased":
                raise InvalidErasure(
                    "duplicate-reference",
                    "The reference must be the IDCS kept for this person, another enrolled one.",
                )
        if ground == "death_after_retention" and status != "deceased":
            raise InvalidErasure("not-deceased", "The register does not record a death.")

    def request(
        self, idcs: str, ground: Ground, reference: str, statement: str | None, by: Signed
    ) -> ErasureRequest:
        self.check(idcs, ground, reference)
        return self._open(idcs, ground, reference, statement, by, "awaiting_approval")

    def _open(
        self,
        idcs: str,
        ground: Ground,
        reference: str,
        statement: str | None,
        by: Signed,
        status: Status,
    ) -> ErasureRequest:
        request_id = str(uuid.uuid4())
        now = self.clock()
        decided = status == "carrying_out"  # the law decided: the retention run
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(tables.erasure_requests).values(
                        id=request_id,
                        idcs=idcs,
                        open_idcs=idcs,
                        ground=ground,
                        reference=reference,
                        statement=statement,
                        status=status,
                        requested_by=by.actor_id,
                        requester_officer=by.officer,
                        requested_at_ns=now,
                        request_audit_index=by.audit_index,
                        decided_by=by.actor_id if decided else None,
                        decided_at_ns=now if decided else None,
                        decision_audit_index=by.audit_index if decided else None,
                    )
                )
        except IntegrityError:
            raise ErasurePending() from None
        return self.get(request_id)

    # -- deciding --------------------------------------------------------------------------

    def refuse(self, request_id: str, reason: str, by: Signed) -> ErasureRequest:
        self._decide(request_id, by, "refused", refusal_reason=reason, open_idcs=None)
        return self.get(request_id)

    def approve(self, request_id: str, by: Signed) -> ErasureRequest:
        """Approve (four eyes: not the requester) and carry out; an approval of a request
        whose carry-out stopped half-way finishes it."""
        current = self.get(request_id)
        if not by.officer or by.officer == current.requester_officer:
            # The policy refuses this first (four_eyes_required); this is the second lock.
            raise ErasureStateError(current.status, "approved by its requester")
        if current.status != "carrying_out":
            self._decide(request_id, by, "carrying_out")
        return self.carry_out(request_id, by.actor)

    def _decide(self, request_id: str, by: Signed, status: Status, **values: Any) -> None:
        r = tables.erasure_requests
        with self._engine.begin() as conn:
            changed = conn.execute(
                update(r)
                .where(and_(r.c.id == request_id, r.c.status == "awaiting_approval"))
                .values(
                    status=status,
                    decided_by=by.actor_id,
                    decided_at_ns=self.clock(),
                    decision_audit_index=by.audit_index,
                    **values,
                )
            ).rowcount
        if changed != 1:
            current = self.get(request_id)  # ErasureNotFound
            raise ErasureStateError(current.status, status.replace("_", " "))

    # -- carrying out ----------------------------------------------------------------------

    def carry_out(self, request_id: str, actor: Actor) -> ErasureRequest:
        """Run the steps not done yet, each audited and recorded; :class:`ErasureIncomplete`
        when one fails (those before it stay done)."""
        current = self.get(request_id)
        if current.status == "carried_out":
            return current
        if current.status != "carrying_out":
            raise ErasureStateError(current.status, "carried out")
        done = {s.step for s in current.steps}
        tag = self._tag(current.idcs)
        for name, step in self.steps:
            if name in done:
                continue
            try:
                count = step(current.idcs)
                receipt = self._audit.append(self._entry(current, name, count, tag, actor))
            except Exception as exc:  # AuditUnavailable included: not done until recorded
                log.exception(
                    "erasure step failed",
                    extra={"step": name, "error_class": type(exc).__name__},
                )
                raise ErasureIncomplete(name) from exc
            with self._engine.begin() as conn:
                conn.execute(
                    insert(tables.erasure_steps).values(
                        request_id=request_id,
                        step=name,
                        done_at_ns=self.clock(),
                        count=count,
                        audit_index=receipt.index,
                    )
                )
        r = tables.erasure_requests
        with self._engine.begin() as conn:
            conn.execute(
                update(r)
                .where(and_(r.c.id == request_id, r.c.status == "carrying_out"))
                .values(status="carried_out", open_idcs=None, carried_out_at_ns=self.clock())
            )
        return self.get(request_id)

    def _entry(
        self, request: ErasureRequest, step: str, count: int, tag: str, actor: Actor
    ) -> AuditEntry:
        # What went and why, under the person's keyed tag: never the IDCS nor a value.
        return AuditEntry(
            time_ns=self.clock(),
            actor=actor,
            action=STEP_ACTION,
            subject=tag,
            legal_basis=action_legal_basis("approve_erasure"),
            outcome="allow",
            reasons=[
                f"erasure:{request.id}",
                f"ground:{request.ground}",
                f"step:{step}",
                f"count:{count}",
            ],
        )

    def erase_by_law(self, idcs: str, ground: Ground, reference: str, by: Signed) -> str:
        """Erase without a second officer where the law itself decides (a deceased person's
        record past the register's retention): the same carry-out, ``by`` the system.
        Resumes the person's carry-out already under way; returns the request id."""
        try:
            opened = self._open(idcs, ground, reference, None, by, "carrying_out")
            request_id = opened.id
        except ErasurePending:
            r = tables.erasure_requests
            with self._engine.connect() as conn:
                request_id = conn.execute(select(r.c.id).where(r.c.open_idcs == idcs)).scalar_one()
            if self.get(request_id).status != "carrying_out":
                # An officer's request waits for its decision; the retention run does not
                # take it out of their hands, it approves nothing.
                self._decide(request_id, by, "carrying_out")
        self.carry_out(request_id, by.actor)
        return request_id

    def unfinished(self) -> list[str]:
        """Requests whose carry-out stopped half-way, oldest first."""
        r = tables.erasure_requests
        with self._engine.connect() as conn:
            return list(
                conn.execute(
                    select(r.c.id).where(r.c.status == "carrying_out").order_by(r.c.requested_at_ns)
                ).scalars()
            )

    # -- reading ---------------------------------------------------------------------------

    def get(self, request_id: str) -> ErasureRequest:
        r, s = tables.erasure_requests, tables.erasure_steps
        with self._engine.connect() as conn:
            row = conn.execute(select(r).where(r.c.id == request_id)).mappings().first()
            if row is None:
                raise ErasureNotFound()
            steps = conn.execute(
                select(s).where(s.c.request_id == request_id).order_by(s.c.done_at_ns)
            ).mappings()
            return _request(dict(row), [_step(dict(m)) for m in steps])

    def list(self, *, status: Status | None = None) -> list[ErasureRequest]:
        """Newest first."""
        r = tables.erasure_requests
        query = select(r.c.id).order_by(r.c.requested_at_ns.desc())
        if status is not None:
            query = query.where(r.c.status == status)
        with self._engine.connect() as conn:
            ids = list(conn.execute(query).scalars())
        return [self.get(i) for i in ids]


def _step(m: Mapping[str, Any]) -> StepDone:
    return StepDone(m["step"], m["done_at_ns"], m["count"], m["audit_index"])


def _request(m: Mapping[str, Any], steps: Sequence[StepDone]) -> ErasureRequest:
    return ErasureRequest(
        id=m["id"],
        idcs=m["idcs"],
        ground=cast(Ground, m["ground"]),
        reference=m["reference"],
        statement=m["statement"],
        status=cast(Status, m["status"]),
        requested_by=m["requested_by"],
        requester_officer=m["requester_officer"],
        requested_at_ns=m["requested_at_ns"],
        decided_by=m["decided_by"],
        decided_at_ns=m["decided_at_ns"],
        refusal_reason=m["refusal_reason"],
        carried_out_at_ns=m["carried_out_at_ns"],
        steps=tuple(steps),
    )
