"""Storing computed batches: the writer, one per run (the command's own process).

A batch's scores go into the vault (which scores again any household whose declaration
changed meanwhile), its audit entries into the log, the households' model version into the
register (:meth:`rsu.HouseholdRegister.record_scores`) and its ``done`` mark into the job.

When the three stores are one database (the default, and the usual deployment) a batch is
**one transaction**: all of it commits, or none of it, and a crash anywhere leaves the batch to
be redone whole by the next run. With separate databases the writer claims the batch first
(``claimed_at_ns`` committed before any side effect), then writes the vault, the log and the
main store in turn; a run that finds a batch claimed leaves out the households this job already
audited since (a crash between the append and the ``done`` mark). Either way the audit record
ends with exactly one entry per household and job.

One writer is also what SQLite wants: one write lock per database file, and a connection's page
cache is emptied whenever another connection writes to the file. The writer's one connection
keeps its cache (the subject index's pages, the tree's right edge) from batch to batch.
"""

from __future__ import annotations

import contextlib
import time
from contextlib import nullcontext
from typing import Any

from sqlalchemy import Connection, select, update

from audit import AuditUnavailable
from audit.storage import EntryFilter, StoredEntry
from gateway.keys import build_audit_log
from gateway.rescore.planner import writing
from gateway.rescore.scorer import Computed, Stores, check_dissolved
from gateway.rescore.tables import batches
from gateway.score_audit import SCORE_ACTION, prepared_score_entries
from storekit import durable_writer
from vault import ScoreEvent

__all__ = ["Writer"]


class Writer:
    """Stores computed batches (see the module docstring)."""

    def __init__(self, stores: Stores, job_id: str) -> None:
        self.stores = stores
        self.job_id = job_id
        self.audit = build_audit_log(
            stores.settings, stores.engines["audit"], stores.engines["main"]
        )
        # Batches append inside their own transactions (AuditLog.bind says why this comes first).
        self.audit.bind()
        self._conn: Connection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        # The job's entries signed now, not at the gateway's next checkpoint: the batches
        # commit in their own transactions, which never sign (audit.AuditLog.append_many).
        with contextlib.suppress(AuditUnavailable):
            self.audit.checkpoint_if_grown()
        self.audit.close()

    def _connection(self) -> Connection:
        """The one connection every batch is written on (one database): kept for the whole
        run, so that on SQLite its page cache stays warm."""
        if self._conn is None:
            # The batch's audit entries commit here: with the log's own durability.
            self._conn = durable_writer(self.stores.main.connect())
        return self._conn

    def write(self, computed: Computed) -> int:
        """Store one batch; returns the households scored (0 if it was done already)."""
        where = (batches.c.job_id == self.job_id, batches.c.batch_no == computed.batch_no)
        if self.stores.one_database:
            conn = self._connection()
            try:
                with conn.begin():
                    row = conn.execute(select(batches).where(*where)).one()
                    if row.status == "done":
                        return 0
                    return self._store(computed, row, conn)
            except BaseException:
                # A failed transaction was rolled back; start the next run on a new connection.
                self._conn = None
                conn.invalidate()
                raise
        with writing(self.stores.main) as main:
            row = main.execute(select(batches).where(*where)).one()
            if row.status == "done":
                return 0
            if row.claimed_at_ns is None:
                # No entry of this batch is older than its computation (the entries carry its
                # time): the search for those already logged by a run that dies starts there.
                since = min((e.time_ns for e in computed.entries), default=time.time_ns())
                main.execute(
                    update(batches).where(*where).values(status="claimed", claimed_at_ns=since)
                )
        return self._store(computed, row, None)

    def _store(self, computed: Computed, row: Any, conn: Connection | None) -> int:
        s = self.stores
        original = {
            before.subject: (before, entry)
            for before, entry in zip(computed.scored.events, computed.entries, strict=True)
        }
        events = s.vault.score_store(computed.scored, s.models, conn=conn)
        if len(events) < len(original):
            # Erased since it was computed: dissolved meanwhile (or refused, if registered).
            kept = {e.subject for e in events}
            with nullcontext(conn) if conn is not None else s.main.connect() as main:
                check_dissolved(main, [subject for subject in original if subject not in kept])
        # A household whose declaration changed since it was computed was scored again by the
        # store: its entry is made again, from its new event.
        entries: list[StoredEntry] = []
        for event in events:
            before, entry = original[event.subject]
            if event is not before:
                (entry,) = prepared_score_entries(s.vault, [event], "rescore", job=self.job_id)
            entries.append(entry)
        if row.claimed_at_ns is not None:
            # A run died inside this batch: its audit entries may already be in the log.
            seen = self._already_audited(int(row.claimed_at_ns))
            entries = [e for e in entries if e.subject not in seen]
        if conn is None:
            if entries:
                self.audit.append_many(entries)
            with writing(s.main) as main:
                self._mark_done(main, computed, events)
        else:
            self._mark_done(conn, computed, events)
            # Last: on PostgreSQL the append locks the log's head until the commit.
            if entries:
                self.audit.append_many(entries, transaction=conn)
        return len(events)

    def _mark_done(self, conn: Connection, computed: Computed, events: list[ScoreEvent]) -> None:
        """The households' model versions (through the register) and the batch's mark, in
        ``conn``'s transaction."""
        scored = {e.subject for e in events}
        pairs = [(h, subject) for h, subject in computed.households if subject in scored]
        self.stores.households.record_scores(pairs, events, "rescore", conn=conn)
        conn.execute(
            update(batches)
            .where(batches.c.job_id == self.job_id, batches.c.batch_no == computed.batch_no)
            .values(status="done", done_at_ns=time.time_ns())
        )

    def _already_audited(self, since_ns: int) -> set[str]:
        seen: set[str] = set()
        after = -1
        marker = f"job:{self.job_id}"
        while True:
            page = self.audit.entries(
                EntryFilter(action=SCORE_ACTION, since_ns=since_ns), after=after, limit=1000
            )
            for logged in page:
                if marker in logged.entry.reasons and logged.entry.subject:
                    seen.add(logged.entry.subject)
            if len(page) < 1000:
                return seen
            after = page[-1].index
