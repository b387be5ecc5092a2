"""Retention enforcement (Law 09.08 art. 3(1)(e): data kept no longer than its purpose needs):
``sijill retention run`` and the ``retention`` scheduled job of ``sijill serve``.

Each processing-registry entry's retention applies to the consents given under it (and their
receipts), counted from the consent's withdrawal or expiry; the controller's own records
follow ``policies/data/retention.json`` (the register's record of a deceased person, under Law
72.18; superseded rectification versions; import reject reports; delivered notification
payloads). Each room offers the query for its own items; this module only walks the list,
moves the clock for drills (``now``) and records the run. A deceased person's record goes
through the erasure procedure's own carry-out (ground ``death_after_retention``, the system
as actor), and a carry-out an earlier run or approval left half-way is finished first.

Every run that changes something is one audit entry: the kinds, the registry entry or own
retention each rests on, the period and the counts; never whose. A dry run reads only and
reports the same counts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from audit import AuditEntry, AuditLog
from audit.entry import Actor
from consent.retention import purge_delivered, purge_ended_consents
from gateway.erasure import ErasureDesk, ErasureError, Signed
from gateway.timefmt import rfc3339, to_ns
from identity import Register
from policies.registry import ProcessingRegistry, own_retention, retention_cutoff

__all__ = ["ACTION", "SYSTEM", "Expiry", "Retention", "RetentionReport"]

log = logging.getLogger("sijill.retention")
ACTION = "retention_run"
SYSTEM: Actor = {"kind": "system", "id": "retention", "sector": None}
LEGAL_BASIS = {"type": "law", "ref": "Law 09.08 art. 3(1)(e) (kept no longer than needed)"}
# An enrolment interrupted this long ago will not resume: its vault records are orphans.
ORPHAN_AFTER_S = 3600


@dataclass(frozen=True)
class Expiry:
    """One kind of item, the entry whose retention applies, and how many went (or would)."""

    kind: str
    entry: str
    retention: str
    count: int

    def code(self) -> str:
        return f"{self.kind}:{self.entry}:{self.retention}:{self.count}"


@dataclass
class RetentionReport:
    now: datetime
    dry_run: bool
    items: list[Expiry] = field(default_factory=list)
    audit_index: int | None = None

    @property
    def total(self) -> int:
        return sum(i.count for i in self.items)

    def as_json(self) -> dict[str, Any]:
        return {
            "now": rfc3339(to_ns(self.now)),
            "dry_run": self.dry_run,
            "items": [i.__dict__ for i in self.items],
            "total": self.total,
            "audit_index": self.audit_index,
        }


# kind, entry id, retention, and the work: given the cutoff and dry_run, how many.
_Task = tuple[str, str, str, Callable[[datetime, bool], int]]


class Retention:
    def __init__(
        self,
        engine: Engine,
        register: Register,
        registry: ProcessingRegistry,
        erasures: ErasureDesk,
        audit: AuditLog,
    ) -> None:
        self._engine = engine
        self._register = register
        self._registry = registry
        self._erasures = erasures
        self._audit = audit
        self._own = own_retention()

    def tasks(self) -> list[_Task]:
        own = self._own
        tasks: list[_Task] = [
            ("consents", entry.id, entry.retention, self._consents(entry.id))
            for entry in self._registry
        ]
        versions = own["rnp-rectification-versions"]
        deceased = own["rnp-deceased-records"]
        rejects = own["rnp-import-rejects"]
        delivered = own["delivered-notifications"]
        tasks += [
            ("unfinished_erasures", deceased.id, "P0D", self._finish_erasures),
            ("deceased_records", deceased.id, deceased.retention, self._erase_deceased),
            # Each version's date was set when it was superseded (its retain_until).
            ("rectification_versions", versions.id, versions.retention, self._versions),
            ("interrupted_enrolments", versions.id, "PT1H", self._orphans),
            ("import_rejects", rejects.id, rejects.retention,
             lambda cutoff, dry: self._register.purge_import_rejects(cutoff, dry_run=dry)),
            ("delivered_notifications", delivered.id, delivered.retention,
             lambda cutoff, dry: purge_delivered(self._engine, to_ns(cutoff), dry_run=dry)),
        ]  # fmt: skip
        return tasks

    def run(
        self,
        *,
        now: datetime | None = None,
        dry_run: bool = False,
        progress: Callable[[int, int, str], None] | None = None,
    ) -> RetentionReport:
        """Apply every retention as of ``now`` (default: the clock); ``progress(done, total,
        kind)`` after each kind."""
        moment = now or datetime.now(UTC)
        report = RetentionReport(moment, dry_run)
        tasks = self.tasks()
        for done, (kind, entry, retention, work) in enumerate(tasks, start=1):
            cutoff = moment if retention in ("P0D", "PT1H") else retention_cutoff(retention, moment)
            report.items.append(Expiry(kind, entry, retention, work(cutoff, dry_run)))
            if progress is not None:
                progress(done, len(tasks), kind)
        if not dry_run and report.total:
            receipt = self._audit.append(
                AuditEntry(
                    time_ns=time.time_ns(),
                    actor=SYSTEM,
                    action=ACTION,
                    subject=None,
                    legal_basis=dict(LEGAL_BASIS),
                    outcome="allow",
                    reasons=[i.code() for i in report.items if i.count],
                )
            )
            report.audit_index = receipt.index
        log.info("retention run", extra={"dry_run": dry_run, "total": report.total})
        return report

    def _consents(self, entry_id: str) -> Callable[[datetime, bool], int]:
        def work(cutoff: datetime, dry_run: bool) -> int:
            return purge_ended_consents(self._engine, entry_id, to_ns(cutoff), dry_run=dry_run)

        return work

    # These two are given ``now`` as their cutoff: the dates are the rows' own.
    def _versions(self, now: datetime, dry_run: bool) -> int:
        return self._register.purge_versions(now, dry_run=dry_run)

    def _orphans(self, now: datetime, dry_run: bool) -> int:
        return self._register.sweep_pending(older_than_s=ORPHAN_AFTER_S, now=now, dry_run=dry_run)

    def _finish_erasures(self, _cutoff: datetime, dry_run: bool) -> int:
        unfinished = self._erasures.unfinished()
        if dry_run:
            return len(unfinished)
        finished = 0
        for request_id in unfinished:
            try:
                self._erasures.carry_out(request_id, SYSTEM)
                finished += 1
            except ErasureError:
                log.warning("an erasure's carry-out stopped again; the next run retries")
        return finished

    def _erase_deceased(self, cutoff: datetime, dry_run: bool) -> int:
        due = self._register.deceased_before(cutoff)
        if dry_run:
            return len(due)
        erased = 0
        for idcs in due:
            try:
                self._erasures.erase_by_law(
                    idcs, "death_after_retention", self._own["rnp-deceased-records"].id,
                    Signed(SYSTEM, "", None),
                )  # fmt: skip
                erased += 1
            except ErasureError:
                log.warning("a deceased person's erasure stopped; the next run resumes it")
        return erased
