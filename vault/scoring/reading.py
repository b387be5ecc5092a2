"""Household records as the scoring reads them: decrypted fields and the current data key.

Shared by the batch scoring (:mod:`vault.scoring.service`) and the per-household operations
(:mod:`vault.scoring.household`): both need a household's fields in plaintext and the data key
under which to seal what they write back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy import Connection

from vault.envelope import Aead
from vault.errors import Erased, IntegrityError, InvalidRecord, UnknownSubject
from vault.records import Records, SubjectRows

__all__ = ["Opened", "open_rows", "read_households"]

# Decrypted fields by subject, and each subject's current data key (version, AEAD).
Opened = tuple[dict[str, dict[str, object]], dict[str, tuple[int, Aead]]]


def read_households(
    records: Records,
    conn: Connection,
    chunk: Sequence[str],
    names: Sequence[str],
    *,
    raw: dict[tuple[str, str], bytes] | None = None,
    decode: bool = True,
    gone: set[str] | None = None,
) -> Opened:
    """Decrypt ``names`` of household records; also the current data key of each (one
    statement reads them all: :meth:`Records.chunk_rows`). ``raw`` receives the ciphertexts
    of ``names``; without ``decode`` the values are typed plaintexts (:meth:`Records.decrypt`).
    ``gone`` receives the subjects erased or unknown, which are then left out rather than
    refused."""
    rows, kinds = records.chunk_rows(conn, chunk, names)
    if gone is not None:
        status = rows.status
        lost = {s for s in chunk if s not in status or status[s] is not None}
        if lost:
            gone.update(lost)
            chunk = [s for s in chunk if s not in lost]
            rows = replace(
                rows,
                subjects=tuple(chunk),
                fields=[row for row in rows.fields if row[0] not in lost],
            )
    for subject in chunk:
        if subject not in rows.status:
            raise UnknownSubject("no record for this subject")
        if rows.status[subject] is not None:
            raise Erased("this subject's data was erased")
        if kinds[subject] != "household":
            raise InvalidRecord("only a household record can be scored")
    return open_rows(records, conn, rows, names, raw=raw, decode=decode)


def open_rows(
    records: Records,
    conn: Connection,
    rows: SubjectRows,
    names: Sequence[str],
    *,
    raw: dict[tuple[str, str], bytes] | None = None,
    decode: bool = True,
) -> Opened:
    """The rest of :func:`read_households`, for rows read already: decrypt ``names``, and
    unwrap the current data key of each subject."""
    chunk = rows.subjects
    aeads: dict[tuple[str, int], Aead] = {}
    out = records.decrypt(conn, rows, {s: set(names) for s in chunk}, aeads, decode=decode)
    if raw is not None:
        raw.update(((s, field), c) for s, field, c in rows.fields if field in names)
    key_rows = rows.keys
    current: dict[str, tuple[int, Aead]] = {}
    for subject in chunk:
        versions = key_rows.get(subject)
        if not versions:
            raise IntegrityError("household record has no data key")
        version = max(versions)
        aead = aeads.get((subject, version))
        if aead is None:  # no field read was sealed under the current key
            aead = aeads[(subject, version)] = records.unwrap(
                conn, subject, version, versions[version]
            )
        current[subject] = (version, aead)
    return out, current
