"""RNP wiring: bulk enrolment, audited as enrolment over HTTP is.

``POST /v1/rnp/persons`` leaves one audit entry per person it enrols (the enforcement point's).
A file of a million persons must leave a million, and the import itself its start, its end and
its counts, or the register would grow by a path the CNDP cannot see (Law 09.08 art. 23). The
per-person entries are appended in each batch's transaction when the audit log shares the
register's database (they commit with the rows, or neither does), and just before it commits
otherwise (a crash between the two then leaves an entry for an enrolment that was rolled back
and is redone on resume: the log may say too much, never too little).
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.process
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Literal

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url

from audit import AuditEntry, AuditLog, AuditUnavailable, EntryTemplate
from audit.entry import Actor, Outcome
from audit.storage import StoredEntry
from gateway.db import make_engine
from gateway.deploy import open_register
from gateway.keys import build_audit_log
from gateway.settings import Settings
from identity import PersonIn
from identity.batches import JobTotals
from identity.bulk import (
    ImportReport,
    check_file,
    finish_import,
    plan_import,
    run_batches,
)
from identity.idcs import Idcs
from policies.registry import action_legal_basis
from vault import Vault

__all__ = ["IMPORT_ACTOR_KIND", "audited_import", "import_audit_log", "usable_workers"]

ENROL = "enrol"
IMPORT_ACTION = "rnp_import"
IMPORT_ACTOR_KIND: Literal["system"] = "system"
# The subject slot of the per-person entry template (JSON writes it as it is, and nothing
# else in an enrolment entry contains it).
_SUBJECT_SLOT = "@@subject@@"
_PERSON_FIELDS = tuple(sorted(PersonIn.model_fields))
log = logging.getLogger("sijill.rnp.import")


def _actor(job_id: str) -> Actor:
    # The job id (the file's SHA-256) ties every entry of one import together.
    return {"kind": IMPORT_ACTOR_KIND, "id": f"rnp-import/{job_id[:16]}", "sector": "registry"}


def _job_entry(job_id: str, outcome: Outcome, reasons: list[str]) -> AuditEntry:
    return AuditEntry(
        time_ns=time.time_ns(),
        actor=_actor(job_id),
        action=IMPORT_ACTION,
        subject=None,
        legal_basis=action_legal_basis(ENROL),
        outcome=outcome,
        reasons=[f"job:{job_id}", *reasons],
    )


def _enrolment_entries(
    vault: Vault, job_id: str
) -> Callable[[list[tuple[Idcs, PersonIn]]], list[StoredEntry]]:
    """Per-person entries as HTTP enrolment writes them (action ``enrol``, the fields given),
    filed under the person's keyed tag, prepared from one template per field set."""
    templates: dict[tuple[str, ...], EntryTemplate] = {}
    basis = action_legal_basis(ENROL)

    def entries(enrolled: list[tuple[Idcs, PersonIn]]) -> list[StoredEntry]:
        now = time.time_ns()
        out = []
        for idcs, person in enrolled:
            fields = tuple(n for n in _PERSON_FIELDS if getattr(person, n) is not None)
            template = templates.get(fields)
            if template is None:
                sample = AuditEntry(
                    time_ns=now,
                    actor=_actor(job_id),
                    action=ENROL,
                    subject=_SUBJECT_SLOT,
                    fields=list(fields),
                    legal_basis=basis,
                    outcome="allow",
                    reasons=["bulk_import"],
                )
                template = templates[fields] = EntryTemplate(sample, (_SUBJECT_SLOT,))
            out.append(template.prepare((vault.subject_tag(str(idcs)),)))
        return out

    return entries


@contextmanager
def import_audit_log(settings: Settings, main: Engine) -> Iterator[tuple[AuditLog, bool]]:
    """The audit log an import appends to, as the server builds it (its heads remembered in
    the main store too), and whether it shares ``main``'s database (then the entries commit in
    each batch's transaction)."""

    assert settings.audit_database_url
    one_database = settings.audit_database_url == settings.database_url
    engine = main if one_database else make_engine(settings.audit_database_url)
    audit = build_audit_log(settings, engine, main)
    try:
        yield audit, one_database
    finally:
        audit.close()
        if engine is not main:
            engine.dispose()


def usable_workers(settings: Settings, requested: int) -> int:
    """How many import workers the register's database can use: SQLite has one writer at a
    time, and every batch writes from start to end (pending entries, vault, register), so a
    second process would only wait for the first; PostgreSQL takes as many as asked."""
    assert settings.database_url
    return requested if make_url(settings.database_url).get_backend_name() != "sqlite" else 1


def audited_import(
    settings: Settings,
    path: Path,
    *,
    workers: int = 1,
    batch_size: int = 1000,
    claim_s: float = 30.0,
    progress: Callable[[JobTotals], None] | None = None,
) -> ImportReport:
    """Import ``path`` with its audit trail: an ``rnp_import`` entry at the start and at the
    end (with the counts), one ``enrol`` entry per person enrolled, in each batch's
    transaction. ``workers`` processes share the batches: this one and ``workers - 1`` more,
    each opening the register, the vault and the audit log as this one does; ``progress``
    gets the total across them after each batch this one commits. A file that cannot be
    imported raises :class:`identity.bulk.ImportFileError` before anything is written;
    :class:`identity.bulk.ImportIncomplete` if every worker stopped with batches left."""
    check_file(path)
    with (
        open_register(settings) as (register, engine, vault),
        import_audit_log(settings, engine) as (audit, one_database),
    ):
        job = plan_import(engine, path, batch_size=batch_size)
        audit.append(_job_entry(job.job_id, "allow", ["stage:start"]))
        try:
            # This process is the first worker; the others start beside it.
            helpers = _start_workers(settings, path, job.job_id, workers - 1, claim_s)
            try:
                run_batches(
                    register, engine, path, job.job_id, claim_s=claim_s, progress=progress,
                    on_enrolled=_audited(vault, audit, job.job_id, one_database=one_database),
                )  # fmt: skip
            finally:
                _join(helpers)
            report = finish_import(engine, job)
        except Exception:
            # The original failure is the one to report, even when the log cannot take this.
            with suppress(AuditUnavailable):
                audit.append(_job_entry(job.job_id, "error", ["stage:end"]))
            raise
        audit.append(_job_entry(job.job_id, "allow", ["stage:end", *_counts(report)]))
    return report


def _audited(
    vault: Vault, audit: AuditLog, job_id: str, *, one_database: bool
) -> Callable[[Connection, list[tuple[Idcs, PersonIn]]], None]:
    prepare = _enrolment_entries(vault, job_id)

    def on_enrolled(conn: Connection, enrolled: list[tuple[Idcs, PersonIn]]) -> None:
        audit.append_many(prepare(enrolled), transaction=conn if one_database else None)

    return on_enrolled


def _start_workers(
    settings: Settings, path: Path, job_id: str, count: int, claim_s: float
) -> list[multiprocessing.process.BaseProcess]:
    """``count`` worker processes on the job. A worker that dies leaves its batch to the
    others once its claim expires."""
    spawn = multiprocessing.get_context("spawn")  # no pooled connection crosses a fork
    procs: list[multiprocessing.process.BaseProcess] = [
        spawn.Process(target=_worker, args=(settings, str(path), job_id, claim_s),
                      name=f"rnp-import-{n}")
        for n in range(count)
    ]  # fmt: skip
    for proc in procs:
        proc.start()
    return procs


def _join(procs: list[multiprocessing.process.BaseProcess]) -> None:
    for proc in procs:
        proc.join()
    failed = [p.exitcode for p in procs if p.exitcode]
    if failed:
        log.warning("import workers stopped with errors", extra={"exit_codes": failed})


def _worker(settings: Settings, path: str, job_id: str, claim_s: float) -> None:
    """One worker process: the batches it can claim, until every batch is done."""
    try:
        with (
            open_register(settings) as (register, engine, vault),
            import_audit_log(settings, engine) as (audit, one_database),
        ):
            run_batches(
                register, engine, Path(path), job_id, claim_s=claim_s,
                on_enrolled=_audited(vault, audit, job_id, one_database=one_database),
            )  # fmt: skip
    except Exception as exc:
        # The class only: a message could carry a value of the file.
        log.error("import worker stopped: %s", type(exc).__name__)
        sys.exit(1)


def _counts(report: ImportReport) -> Sequence[str]:
    return [
        f"lines:{report.lines}",
        f"enrolled:{report.enrolled}",
        f"rejected:{report.rejected}",
        f"resumed_lines:{report.resumed_lines}",
    ]
