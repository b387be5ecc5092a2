"""Bulk enrolment from a file (CSV or JSON Lines): batched, resumable, with a reject report.

Each file is an *import job* keyed by the SHA-256 of its bytes. Every batch commits its
register rows, its rejects and the job's "last line done" in one transaction, so a run killed at
any point (SIGKILL included) and started again resumes after the last committed line: no row is
enrolled twice (and were one presented again, deduplication would refuse it). Vault records of
a batch that never committed are erased on resume (:meth:`identity.Register.sweep_pending`).

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
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import charset_normalizer
from pydantic import ValidationError
from sqlalchemy import (
    Connection,
    Engine,
    insert,
    select,
    update,
)

from identity.idcs import Idcs
from identity.person import PersonIn, field_problems
from identity.register import Register
from identity.tables import import_jobs, import_rejects

__all__ = [
    "ImportFileError",
    "ImportReport",
    "Reject",
    "check_file",
    "file_digest",
    "import_file",
    "read_records",
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
    resumed_from_line: int
    rejects: list[Reject] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id, "file": self.file, "lines": self.lines,
            "enrolled": self.enrolled, "rejected": self.rejected,
            "resumed_from_line": self.resumed_from_line,
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


def read_records(path: Path, *, skip_through: int = 0) -> Iterator[Parsed]:
    """(line number, record or None, problems) for each record of a CSV or JSON Lines file.

    CSV line numbers count the header as line 1; a record is numbered by its first line.
    JSON lines numbered ``skip_through`` or less are yielded unparsed (record None, no
    problems): a resumed import has committed them already.
    """
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
            if line <= skip_through:
                yield line, None, []
                continue
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except ValueError:
                yield line, None, [("record", INVALID_JSON)]
                continue
            if not isinstance(record, dict):
                yield line, None, [("record", NOT_AN_OBJECT)]
                continue
            yield line, record, []


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


def import_file(
    register: Register,
    engine: Engine,
    path: Path,
    *,
    batch_size: int = 1000,
    progress: Callable[[int, int, int], None] | None = None,
    on_enrolled: Callable[[Connection, list[tuple[Idcs, PersonIn]]], None] | None = None,
) -> ImportReport:
    """Enrol every valid record of ``path``; resume a previous run of the same file.

    ``progress(lines_done, enrolled, rejected)`` is called after each committed batch.
    ``on_enrolled(conn, enrolled)`` runs last in each batch's committing transaction with
    the (IDCS, person) pairs it enrolled: the caller's audit entries commit with the rows.
    Raises :class:`ImportFileError`, having written nothing, if the file cannot be imported.
    """
    check_file(path)
    job_id = file_digest(path)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        job = (
            conn.execute(select(import_jobs).where(import_jobs.c.job_id == job_id))
            .mappings()
            .first()
        )
        if job is None:
            conn.execute(
                insert(import_jobs).values(job_id=job_id, file_name=path.name[:255], lines_done=0,
                                    enrolled=0, rejected=0, started_at=now, updated_at=now)
            )  # fmt: skip
            done, enrolled, rejected = 0, 0, 0
        else:
            done, enrolled, rejected = job["lines_done"], job["enrolled"], job["rejected"]
    resumed_from = done
    # A previous run may have died between writing a batch to the vault and committing it.
    register.sweep_pending(job_id=job_id)
    if progress is not None:
        progress(done, enrolled, rejected)

    batch: list[tuple[int, PersonIn]] = []
    bad: list[Reject] = []
    last_line = done

    def flush(upto: int) -> None:
        nonlocal done, enrolled, rejected
        people = [p for _, p in batch]
        lines = [n for n, _ in batch]
        invalid = list(bad)
        counts: dict[str, int] = {}

        def bookkeeping(conn: Connection, results: list[Idcs | None]) -> None:
            dupes = [Reject(n, "record", DUPLICATE) for n, r in zip(lines, results, strict=True)
                     if r is None]  # fmt: skip
            # One reason per (line, field): the report's key, and the table's.
            every = list({(r.line, r.field): r for r in invalid + dupes}.values())
            if every:
                conn.execute(
                    insert(import_rejects),
                    [{"job_id": job_id, "line": r.line, "field": r.field[:64],
                      "reason": r.reason[:200]} for r in every],
                )  # fmt: skip
            counts["enrolled"] = len(results) - len(dupes)
            counts["rejected"] = len({r.line for r in every})
            conn.execute(
                update(import_jobs).where(import_jobs.c.job_id == job_id)
                .values(lines_done=upto, enrolled=import_jobs.c.enrolled + counts["enrolled"],
                        rejected=import_jobs.c.rejected + counts["rejected"],
                        updated_at=datetime.now(UTC))
            )  # fmt: skip
            if on_enrolled is not None:
                done_now = [(r, p) for r, p in zip(results, people, strict=True) if r is not None]
                if done_now:
                    on_enrolled(conn, done_now)

        register.enrol_many(people, job_id=job_id, in_transaction=bookkeeping)
        done = upto
        enrolled += counts["enrolled"]
        rejected += counts["rejected"]
        batch.clear()
        bad.clear()
        if progress is not None:
            progress(done, enrolled, rejected)

    for line, record, problems in read_records(path, skip_through=done):
        last_line = line
        if line <= done:
            continue  # committed by an earlier run
        if record is not None:
            parsed = _parse(record)
            if isinstance(parsed, PersonIn):
                batch.append((line, parsed))
            else:
                problems = parsed
        for fld, reason in problems:
            bad.append(Reject(line, fld, reason))
        if len(batch) + len({r.line for r in bad}) >= batch_size:
            flush(line)
    if batch or bad or last_line > done:
        flush(last_line)
    with engine.begin() as conn:
        conn.execute(
            update(import_jobs)
            .where(import_jobs.c.job_id == job_id)
            .values(finished_at=datetime.now(UTC))
        )
        all_rejects = [
            Reject(r.line, r.field, r.reason)
            for r in conn.execute(
                select(import_rejects).where(import_rejects.c.job_id == job_id)
                .order_by(import_rejects.c.line, import_rejects.c.field)
            )
        ]  # fmt: skip
    return ImportReport(job_id=job_id, file=path.name, lines=last_line, enrolled=enrolled,
                        rejected=rejected, resumed_from_line=resumed_from,
                        rejects=all_rejects)  # fmt: skip
