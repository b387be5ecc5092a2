"""Bulk enrolment from a file (CSV or JSON Lines): batched, resumable, with a reject report.

Each file is an *import job* keyed by the SHA-256 of its bytes, cut into batches of lines
recorded as job rows (:mod:`identity.batches`). A worker claims a batch and commits its
register rows, its rejects, its audit entries and the batch's "done" in one transaction fenced
by its claim, so several workers (processes, hosts) share one file, and a run killed at any
point (SIGKILL included) and started again, or the workers still running, finish the batches
left: no row is enrolled twice (and were one presented again, deduplication would refuse it).
Vault records of a batch that never committed are erased by the worker that takes it over
(:meth:`identity.Register.sweep_pending`).

The reject report names the line, the column and an error code, never a value: the report is a
file an operator mails around, and a rejected row is still personal data (Law 09.08 art. 23).
For the same reason a CSV file's header is checked before any row is read (:func:`check_file`):
a file without one would otherwise have its first person taken for column names, and those
"names" copied into every reject.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import charset_normalizer
from pydantic import ValidationError
from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import DBAPIError

from identity.batches import Batch, BatchClaims, BatchLost, JobTotals, job_totals, plan_batches
from identity.idcs import Idcs
from identity.person import PersonIn, field_problems
from identity.register import Register
from identity.tables import import_batches, import_jobs, import_rejects

__all__ = [
    "ImportFileError",
    "ImportIncomplete",
    "ImportJob",
    "ImportReport",
    "Reject",
    "check_file",
    "file_digest",
    "finish_import",
    "import_file",
    "plan_import",
    "read_records",
    "run_batches",
]

# Columns the synthetic population and RSU exports carry that enrolment does not use.
IGNORED_COLUMNS = frozenset({"household", "role"})
COLUMNS = frozenset(PersonIn.model_fields) | IGNORED_COLUMNS
REQUIRED_COLUMNS = frozenset(n for n, f in PersonIn.model_fields.items() if f.is_required())
# Reject codes of whole records; a field's are pydantic's error types or our validators' rules.
DUPLICATE = "duplicate_person"  # Law 72.18 art. 8: one IDCS per person
EXTRA_VALUES = "more_values_than_columns"
INVALID_JSON = "invalid_json"
NOT_AN_OBJECT = "not_an_object"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
log = logging.getLogger("sijill.rnp.import")
_RETRY_STATES = frozenset({"40P01", "40001"})  # PostgreSQL: deadlock, serialization failure


class ImportFileError(ValueError):
    """The file cannot be imported at all (empty, no header, wrong columns); nothing was
    written. The message names columns and positions, never a cell's value."""


@dataclass(frozen=True)
class Reject:
    line: int
    field: str
    reason: str


@dataclass
class ImportReport:
    job_id: str
    file: str
    lines: int
    enrolled: int
    rejected: int
    resumed_lines: int  # lines committed by earlier runs (whole batches, in any order)
    rejects: list[Reject] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id, "file": self.file, "lines": self.lines,
            "enrolled": self.enrolled, "rejected": self.rejected,
            "resumed_lines": self.resumed_lines,
            "rejects": [{"line": r.line, "field": r.field, "reason": r.reason}
                        for r in self.rejects],
        }  # fmt: skip


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# Encodings an office's CSV comes in: UTF-8 (with Excel's BOM or without), Windows-1256 (Arabic
# Windows and Excel), Latin-1 / Windows-1252 (French). Anything else must be converted first.
_SINGLE_BYTE = ("cp1256", "cp1252", "latin_1")
_DELIMITERS = (",", ";", "\t", "|")  # French Excel writes ';'
_SAMPLE = 1 << 20


def detect_encoding(path: Path) -> str:
    """The file's text encoding: UTF-8 when it decodes as such (``utf-8-sig`` drops a BOM),
    else the single-byte encoding charset-normalizer finds likeliest among those offices use."""
    with path.open("rb") as fh:
        sample = fh.read(_SAMPLE)
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        # A multi-byte character cut at the sample's end is not an error of the file.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=len(sample) < _SAMPLE)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    best = charset_normalizer.from_bytes(sample, cp_isolation=list(_SINGLE_BYTE)).best()
    if best is None:
        raise ImportFileError(
            "the file is not text in UTF-8, Windows-1256 or Latin-1; save it as UTF-8 CSV"
        )
    return str(best.encoding)


def _delimiter(header_line: str) -> str:
    """The delimiter that makes the header name the most known columns."""
    return max(
        _DELIMITERS,
        key=lambda d: sum(c.strip() in COLUMNS for c in header_line.split(d)),
    )


def _open_csv(path: Path) -> tuple[TextIO, type[csv.Dialect]]:
    """The CSV open in its own encoding, and a reader dialect with its delimiter."""
    encoding = detect_encoding(path)
    fh = path.open(newline="", encoding=encoding, errors="strict")
    first = fh.readline()
    fh.seek(0)

    class Dialect(csv.excel):
        delimiter = _delimiter(first)

    return fh, Dialect


@contextlib.contextmanager
def _decoding(fh: TextIO) -> Iterator[None]:
    """A byte further on that the detected encoding cannot read: one clear error, no value."""
    try:
        yield
    except UnicodeDecodeError:
        raise ImportFileError(
            f"the file is not entirely {fh.encoding} text (a byte further on does not "
            "decode); save it as UTF-8 CSV and import it again"
        ) from None


def _is_csv(path: Path) -> bool:
    if path.suffix.lower() == ".csv":
        return True
    if path.suffix.lower() in {".jsonl", ".ndjson", ".json"}:
        return False
    with path.open("rb") as fh:
        return not fh.read(64).lstrip().startswith(b"{")


Parsed = tuple[int, dict[str, Any] | None, list[tuple[str, str]]]


def _expected() -> str:
    optional = sorted(COLUMNS - REQUIRED_COLUMNS)
    return f"required: {', '.join(sorted(REQUIRED_COLUMNS))}; optional: {', '.join(optional)}"


def _check_header(cells: list[str]) -> None:
    names = [c.strip() for c in cells]
    known = [n for n in names if n in COLUMNS]
    if not known:
        # The first line is data, not a header: say so without quoting any of it.
        raise ImportFileError(
            "line 1 is not a header row (it names none of the known columns); the file must "
            f"start with a header naming its columns ({_expected()})"
        )
    problems = []
    missing = sorted(REQUIRED_COLUMNS - set(known))
    if missing:
        problems.append(f"missing columns: {', '.join(missing)}")
    unknown = [str(i) for i, n in enumerate(names, 1) if n not in COLUMNS]
    if unknown:
        # By position only: an unknown header cell may be a value typed in the wrong line.
        problems.append(f"unknown columns at positions {', '.join(unknown)}")
    twice = sorted({n for n in known if known.count(n) > 1})
    if twice:
        problems.append(f"duplicated columns: {', '.join(twice)}")
    if problems:
        raise ImportFileError(f"the header is not valid: {'; '.join(problems)} ({_expected()})")


def check_file(path: Path) -> None:
    """Raise :class:`ImportFileError` unless ``path`` holds at least one record and, for CSV,
    starts with a header naming exactly the known columns (each once, every required one).
    Reads the header and the first record only."""
    if _is_csv(path):
        fh, dialect = _open_csv(path)
        with fh, _decoding(fh):
            reader = csv.reader(fh, dialect)
            header = next(reader, None)
            if header is None or not any(c.strip() for c in header):
                raise ImportFileError(
                    f"the file is empty or its first line is blank ({_expected()})"
                )
            _check_header(header)
            if not any(any(c.strip() for c in row) for row in reader):
                raise ImportFileError("the file has a header but no record")
        return
    with path.open(encoding="utf-8") as fh, _decoding(fh):
        if not any(line.strip() for line in fh):
            raise ImportFileError("the file is empty: no record")


Raw = tuple[int, str | dict[str, Any] | None, list[tuple[str, str]]]


def _raw_records(path: Path) -> Iterator[Raw]:
    """(line number, raw record, problems) for each record: a CSV row as a dict (the CSV
    reader must parse every row to find where records start), a JSON line as its unparsed
    text, so that a worker skipping another's batch pays no JSON parsing for it."""
    if _is_csv(path):
        fh, dialect = _open_csv(path)
        with fh, _decoding(fh):
            reader = csv.DictReader(fh, dialect=dialect)
            start = 2
            for row in reader:
                line, start = start, reader.line_num + 1
                if None in row:
                    yield line, None, [("record", EXTRA_VALUES)]
                    continue
                yield line, {k: (v if v != "" else None) for k, v in row.items()}, []
        return
    with path.open(encoding="utf-8") as fh, _decoding(fh):
        for line, text in enumerate(fh, 1):
            if text.strip():
                yield line, text, []


def _decoded(raw: Raw) -> Parsed:
    line, record, problems = raw
    if not isinstance(record, str):
        return line, record, problems
    try:
        parsed = json.loads(record)
    except ValueError:
        return line, None, [("record", INVALID_JSON)]
    if not isinstance(parsed, dict):
        return line, None, [("record", NOT_AN_OBJECT)]
    return line, parsed, []


def read_records(path: Path) -> Iterator[Parsed]:
    """(line number, record or None, problems) for each record of a CSV or JSON Lines file.

    CSV line numbers count the header as line 1; a record is numbered by its first line.
    Blank JSON lines are no record.
    """
    for raw in _raw_records(path):
        yield _decoded(raw)


def _line_count(path: Path) -> int:
    """The file's lines as its records number them (a last line without a newline counts)."""
    count, last = 0, b"\n"
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


class _Records:
    """One worker's reading of the file: records by line range, moving forward through one
    open reader as batches are claimed in file order, opened again for an earlier batch (one
    a dead worker left)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._reader: Iterator[Raw] | None = None
        self._ahead: Raw | None = None
        self._at = 0  # the last line read

    def between(self, first: int, last: int) -> Iterator[Parsed]:
        unread = self._ahead[0] if self._ahead is not None else self._at + 1
        if self._reader is None or first < unread:
            self._reader, self._ahead, self._at = _raw_records(self._path), None, 0
        while True:
            raw = self._ahead if self._ahead is not None else next(self._reader, None)
            self._ahead = None
            if raw is None:
                return
            self._at = raw[0]
            if raw[0] > last:
                self._ahead = raw
                return
            if raw[0] >= first:
                yield _decoded(raw)


def _parse(record: dict[str, Any]) -> PersonIn | list[tuple[str, str]]:
    data = {k: v for k, v in record.items() if k not in IGNORED_COLUMNS}
    try:
        return PersonIn.model_validate(data)
    except ValidationError as exc:
        return [
            # A JSON key that is not a plain name (a value typed as a key, say) is reported as
            # the record's, not quoted.
            (field if field in COLUMNS or _NAME.match(field) else "record", _code(reason))
            for field, reason in field_problems(exc, codes=True)
        ]


def _code(reason: str) -> str:
    """A stable code for a fixed rule phrase ("is before 1900" -> ``is_before_1900``)."""
    return re.sub(r"[^a-z0-9]+", "_", reason.lower()).strip("_")[:64] or "invalid"


@dataclass(frozen=True)
class ImportJob:
    """An import of one file: its id (the SHA-256 of its bytes), its lines and batches, and
    the lines committed by earlier runs when this one started."""

    job_id: str
    file: str
    lines: int
    batches: int
    done_before: int


class ImportIncomplete(RuntimeError):
    """Batches of the import were left undone (every worker stopped); a re-run resumes."""


def plan_import(engine: Engine, path: Path, *, batch_size: int = 1000) -> ImportJob:
    """The job of ``path``: recorded with its batches the first time, found again on a re-run
    (whose batch size is then the first run's). Raises :class:`ImportFileError`, having
    written nothing, if the file cannot be imported."""
    check_file(path)
    job_id = file_digest(path)
    with engine.connect() as conn:
        known = conn.execute(
            select(import_jobs.c.job_id).where(import_jobs.c.job_id == job_id)
        ).first()
    if known is None:
        starts = [line for line, _record, _problems in _raw_records(path)]
        lines = _line_count(path)
        now = datetime.now(UTC)
        with engine.begin() as conn:
            conn.execute(
                insert(import_jobs).values(job_id=job_id, file_name=path.name[:255], lines_done=0,
                                           enrolled=0, rejected=0, started_at=now, updated_at=now)
            )  # fmt: skip
            plan_batches(conn, job_id, starts, lines, batch_size)
    with engine.connect() as conn:
        totals = job_totals(conn, job_id)
        batches = conn.execute(
            select(func.count(), func.max(import_batches.c.last_line)).where(
                import_batches.c.job_id == job_id
            )
        ).one()
    return ImportJob(job_id=job_id, file=path.name, lines=int(batches[1]),
                     batches=int(batches[0]), done_before=totals.lines)  # fmt: skip


def run_batches(
    register: Register,
    engine: Engine,
    path: Path,
    job_id: str,
    *,
    claim_s: float = 30.0,
    progress: Callable[[JobTotals], None] | None = None,
    on_enrolled: Callable[[Connection, list[tuple[Idcs, PersonIn]]], None] | None = None,
) -> None:
    """One worker's share of the job: claim a batch, enrol it, commit it fenced by its claim,
    until every batch of the job is done (by this worker or others). A batch another worker
    claimed and never finished is taken over once its claim expires (``claim_s`` seconds).

    ``progress(totals)`` is called after each batch this worker commits. ``on_enrolled(conn,
    enrolled)`` runs in each batch's committing transaction with the (IDCS, person) pairs it
    enrolled: the caller's audit entries commit with the rows.
    """
    claims = BatchClaims(engine, job_id, ttl_s=claim_s)
    records = _Records(path)
    while True:
        batch = claims.claim()
        if batch is None:
            wait = claims.wait_s()
            if wait is None:
                return
            time.sleep(min(max(wait, 0.05), 1.0))
            continue
        try:
            _import_batch(register, claims, batch, records, on_enrolled)
        except BatchLost:
            log.warning("import batch taken over after its claim expired",
                        extra={"batch": batch.number})  # fmt: skip
            continue
        except DBAPIError as exc:
            with contextlib.suppress(Exception):
                claims.release(batch)
            # Two workers enrolling the same person from two batches can deadlock on the
            # unique keys; PostgreSQL rolls one back, and its batch is simply done again.
            if getattr(exc.orig, "sqlstate", None) not in _RETRY_STATES:
                raise
            log.warning("import batch rolled back by the database; retrying",
                        extra={"batch": batch.number})  # fmt: skip
            continue
        except BaseException:
            with contextlib.suppress(Exception):
                claims.release(batch)
            raise
        if progress is not None:
            with engine.connect() as conn:
                progress(job_totals(conn, job_id))


def _import_batch(
    register: Register,
    claims: BatchClaims,
    batch: Batch,
    records: _Records,
    on_enrolled: Callable[[Connection, list[tuple[Idcs, PersonIn]]], None] | None,
) -> None:
    # An earlier holder of this batch may have died between its vault write and its commit.
    register.sweep_pending(job_id=batch.tag)
    people: list[PersonIn] = []
    lines: list[int] = []
    invalid: list[Reject] = []
    for line, record, problems in records.between(batch.first_line, batch.last_line):
        if record is not None:
            parsed = _parse(record)
            if isinstance(parsed, PersonIn):
                people.append(parsed)
                lines.append(line)
                continue
            problems = parsed
        invalid += [Reject(line, fld, reason) for fld, reason in problems]

    def bookkeeping(conn: Connection, results: list[Idcs | None]) -> None:
        dupes = [Reject(n, "record", DUPLICATE) for n, r in zip(lines, results, strict=True)
                 if r is None]  # fmt: skip
        # One reason per (line, field): the report's key, and the table's.
        every = list({(r.line, r.field): r for r in invalid + dupes}.values())
        # First, so that a lost claim costs nothing more (on PostgreSQL it also locks the row
        # against a takeover until this transaction ends).
        claims.complete(conn, batch, enrolled=len(results) - len(dupes),
                        rejected=len({r.line for r in every}))  # fmt: skip
        if every:
            conn.execute(
                insert(import_rejects),
                [{"job_id": batch.job_id, "line": r.line, "field": r.field[:64],
                  "reason": r.reason[:200]} for r in every],
            )  # fmt: skip
        if on_enrolled is not None:
            done_now = [(r, p) for r, p in zip(results, people, strict=True) if r is not None]
            if done_now:
                on_enrolled(conn, done_now)

    register.enrol_many(people, job_id=batch.tag, in_transaction=bookkeeping)


def finish_import(engine: Engine, job: ImportJob) -> ImportReport:
    """The job's report once every batch is done (its counts recorded on the job); raises
    :class:`ImportIncomplete` if some are not."""
    with engine.begin() as conn:
        totals = job_totals(conn, job.job_id)
        if totals.batches_left:
            raise ImportIncomplete(
                f"{totals.batches_left} of {job.batches} batches were not imported; run the "
                "import again to resume"
            )
        conn.execute(
            update(import_jobs).where(import_jobs.c.job_id == job.job_id)
            .values(lines_done=totals.lines, enrolled=totals.enrolled, rejected=totals.rejected,
                    updated_at=datetime.now(UTC), finished_at=datetime.now(UTC))
        )  # fmt: skip
        all_rejects = [
            Reject(r.line, r.field, r.reason)
            for r in conn.execute(
                select(import_rejects).where(import_rejects.c.job_id == job.job_id)
                .order_by(import_rejects.c.line, import_rejects.c.field)
            )
        ]  # fmt: skip
    return ImportReport(job_id=job.job_id, file=job.file, lines=job.lines,
                        enrolled=totals.enrolled, rejected=totals.rejected,
                        resumed_lines=job.done_before, rejects=all_rejects)  # fmt: skip


def import_file(
    register: Register,
    engine: Engine,
    path: Path,
    *,
    batch_size: int = 1000,
    claim_s: float = 30.0,
    progress: Callable[[JobTotals], None] | None = None,
    on_enrolled: Callable[[Connection, list[tuple[Idcs, PersonIn]]], None] | None = None,
) -> ImportReport:
    """Enrol every valid record of ``path`` in this process; resume a previous run of the
    same file. :func:`plan_import`, :func:`run_batches` and :func:`finish_import`, which
    the command runs in several processes when asked for more than one worker."""
    job = plan_import(engine, path, batch_size=batch_size)
    if progress is not None:
        with engine.connect() as conn:
            progress(job_totals(conn, job.job_id))
    run_batches(register, engine, path, job.job_id, claim_s=claim_s, progress=progress,
                   on_enrolled=on_enrolled)  # fmt: skip
    return finish_import(engine, job)
