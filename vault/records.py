"""Encrypted records as rows: reading them, opening them, and the lock every writer takes.

What every other vault module needs of the store, under names they may use (none of them reads
a private member of another): the statements that fetch a record's status, wrapped data keys
and ciphertexts in one snapshot (:func:`vault.tables.record_query`), the unwrapping of data
keys (with one retry when a rotation re-wrapped a key under us), decryption under them, the
write transaction with its rotation lock, and the KEK floor a new wrap must reach.

Reads are batched for bulk enrolment and national rescoring: a subject's data key is unwrapped
once per batch and subjects are fetched :data:`storekit.bulk.CHUNK` at a time
(``storekit.bulk.among``). A single subject (the agency path) is read in one statement on
``storekit``'s hot path.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Engine,
    Select,
    bindparam,
    func,
    select,
    text,
    update,
)

from storekit import hot_sql
from storekit.bulk import among, chunks
from vault import tables as t
from vault.envelope import Aead, decode_value, decrypt_field, generate_key, key_id_of
from vault.errors import Erased, IntegrityError, InvalidRecord, KeyProviderError, UnknownSubject
from vault.keys.base import KeyProvider, wrapped_version

__all__ = [
    "Records",
    "SubjectRows",
    "check_subject",
    "count_declaration_write",
    "declaration_writes",
    "key_context",
    "new_data_key",
]

_SUBJECT = re.compile(r"\A[A-Za-z0-9._:\-]{1,128}\Z")
# pg_advisory_xact_lock key of the KEK rotation lock (any constant unique to this lock).
_ROTATION_LOCK = 0x5153_4B45_4B00  # "SQKEK"
_DECLARATION_WRITES = "declaration_writes"


def check_subject(subject: object) -> str:
    if not isinstance(subject, str) or not _SUBJECT.match(subject):
        raise InvalidRecord("subject id must be 1-128 characters of [A-Za-z0-9._:-]")
    return subject


def key_context(subject: str, version: int) -> bytes:
    """The associated data of a wrapped data key: it binds the key to its row, so a wrapped
    key copied to another subject or version does not unwrap."""
    return f"dek\x00{subject}\x00{version}".encode()


def new_data_key() -> tuple[bytes, Aead]:
    """A fresh 256-bit data key, and the AEAD over it."""
    dek = generate_key()
    return dek, Aead(dek)


def declaration_writes(conn: Connection, *, lock: bool = False) -> int | None:
    """The count of declaration rewrites (vault.tables.counters), None if the store has no
    counter. ``lock`` (PostgreSQL): hold it shared until the transaction ends, so that no
    rewrite commits meanwhile (SQLite's write lock already excludes them)."""
    query = select(t.counters.c.value).where(t.counters.c.name == _DECLARATION_WRITES)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update(read=True)
    value = conn.execute(query).scalar_one_or_none()
    return None if value is None else int(value)


def count_declaration_write(conn: Connection) -> None:
    """In the transaction that rewrites a declaration of an existing record (or erases one):
    a rescoring's store compares the count with the one it read before scoring."""
    conn.execute(
        update(t.counters)
        .where(t.counters.c.name == _DECLARATION_WRITES)
        .values(value=t.counters.c.value + 1)
    )


# Statements rows_of keeps; far above the few sets of names its callers ask for.
_STATEMENTS_KEPT = 64


# The single-subject read takes the subject's status, data keys and ciphertexts in one
# statement (one snapshot, one round trip), compiled once. A union with the fields' own tables
# (tables.OWN_TABLES) costs SQLite a temporary index on every read, so each read takes only
# the tables of the fields it wants (_subject_record).
def _this_subject(column: Column[Any]) -> ColumnElement[bool]:
    return column == bindparam("subject")


_SUBJECT_RECORD = t.record_query(_this_subject, own=())  # every field of vault_fields
_SUBJECT_OWN_FIELD = {name: t.record_query(_this_subject, [name]) for name in t.OWN_TABLES}


@functools.cache
def _subject_record_with(own: frozenset[str]) -> Select[Any]:
    """Every field of vault_fields and those ``own`` tables' (compiled once a set)."""
    return t.record_query(_this_subject, own=own)


def _subject_record(names: Iterable[str]) -> Select[Any]:
    wanted = set(names)
    own = wanted & t.OWN_TABLES.keys()
    if not own:
        return _SUBJECT_RECORD
    if len(wanted) == 1:  # eligibility: the score alone
        return _SUBJECT_OWN_FIELD[own.pop()]
    return _subject_record_with(frozenset(own))


@dataclass(frozen=True)
class SubjectRows:
    """What a read fetched for some subjects, in this order: erasure status, wrapped data
    keys, field ciphertexts."""

    subjects: Sequence[str]
    status: Mapping[str, int | None]
    keys: Mapping[str, Mapping[int, bytes]]
    fields: Sequence[tuple[str, str, bytes]]


def record_rows(
    subjects: Sequence[str], rows: Iterable[Sequence[Any]]
) -> tuple[SubjectRows, dict[str, str]]:
    """Rows of :func:`vault.tables.record_query` grouped by subject, and each record's kind."""
    status: dict[str, int | None] = {}
    kinds: dict[str, str] = {}
    keys: dict[str, dict[int, bytes]] = {}
    fields: dict[tuple[str, str], bytes] = {}
    for subject, kind, erased, version, wrapped, field, ciphertext in rows:
        status[subject] = erased
        kinds[subject] = str(kind)
        if version is not None and version not in keys.setdefault(subject, {}):
            keys[subject][version] = bytes(wrapped)
        if field is not None and (subject, field) not in fields:
            fields[(subject, field)] = bytes(ciphertext)
    listed = [(subject, field, c) for (subject, field), c in fields.items()]
    return SubjectRows(tuple(subjects), status, keys, listed), kinds


class Records:
    """The vault store's records under one key provider: reads, decryption, write locking."""

    def __init__(
        self, engine: Engine, keys: KeyProvider, *, clock: Callable[[], int] = time.time_ns
    ) -> None:
        self.engine = engine
        self.keys = keys
        self.clock = clock
        self.sqlite = engine.dialect.name == "sqlite"
        self._hot = hot_sql(engine)
        # rows_of's statements by (names, own): a handful in practice (reveals, eligibility).
        self._many: dict[tuple[tuple[str, ...] | None, frozenset[str] | None], Select[Any]] = {}

    # -- transactions ------------------------------------------------------------------------
    @contextmanager
    def write(self, *, exclusive: bool = False) -> Iterator[Connection]:
        """A write transaction. Writers share the rotation lock; the rotation's final check and
        retirement take it exclusively, so no data key wrapped under a KEK version about to be
        retired can commit unseen (see :meth:`kek_floor` and vault.rotation)."""
        with self.engine.begin() as conn:
            self.write_lock(conn, exclusive=exclusive)
            yield conn

    def write_lock(self, conn: Connection, *, exclusive: bool = False) -> None:
        """Take the locks of :meth:`write` in ``conn``'s transaction."""
        if self.sqlite:
            # Take SQLite's write lock before the first read: a deferred transaction that
            # reads and then writes fails with SQLITE_BUSY instead of waiting when another
            # writer commits in between. A write that touches no row still takes the lock,
            # and it serialises all writers, which also makes it the rotation lock.
            conn.execute(text("DELETE FROM vault_rotations WHERE 1 = 0"))
        else:
            lock = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
            conn.execute(text(f"SELECT {lock}(:k)"), {"k": _ROTATION_LOCK})

    def kek_floor(self, conn: Connection) -> int:
        """The newest KEK version a rotation has started towards: nothing may be wrapped under
        an older one from then on (it may be retired as soon as the rotation's last pass ends,
        while this process's provider may still hold a stale view of the versions)."""
        floor = conn.execute(select(func.max(t.rotations.c.target_version))).scalar_one()
        return int(floor or 0)

    def wrap_at_least(self, floor: int, key: bytes, context: bytes) -> bytes:
        """``key`` wrapped under a KEK version no older than ``floor``."""
        wrapped = self.keys.wrap(key, context)
        if wrapped_version(wrapped) < floor:
            self.keys.versions()  # forces a fresh look at the provider's versions
            wrapped = self.keys.wrap(key, context)
            if wrapped_version(wrapped) < floor:
                raise KeyProviderError("the key provider does not have the rotated KEK version")
        return wrapped

    # -- data keys ---------------------------------------------------------------------------
    def key_rows(self, conn: Connection, subjects: Sequence[str]) -> dict[str, dict[int, bytes]]:
        """The wrapped data keys of ``subjects``, by key version."""
        found: dict[str, dict[int, bytes]] = {}
        for chunk in chunks(subjects):
            for row in conn.execute(
                select(t.data_keys.c.subject, t.data_keys.c.version, t.data_keys.c.wrapped).where(
                    among(conn, t.data_keys.c.subject, chunk)
                )
            ):
                found.setdefault(row.subject, {})[row.version] = bytes(row.wrapped)
        return found

    def unwrap(self, conn: Connection, subject: str, version: int, wrapped: bytes) -> Aead:
        try:
            return Aead(self.keys.unwrap(wrapped, key_context(subject, version)))
        except IntegrityError:
            # A rotation may have re-wrapped this key and retired the old KEK version between
            # our read and now: read the row again once before calling it an integrity failure.
            again = conn.execute(
                select(t.data_keys.c.wrapped).where(
                    t.data_keys.c.subject == subject, t.data_keys.c.version == version
                )
            ).scalar_one_or_none()
            if again is None or bytes(again) == wrapped:
                raise
            return Aead(self.keys.unwrap(bytes(again), key_context(subject, version)))

    def current_keys(
        self, conn: Connection, subjects: Sequence[str]
    ) -> dict[str, tuple[int, Aead]]:
        """The newest data key of each of ``subjects`` that has one: (version, AEAD)."""
        out: dict[str, tuple[int, Aead]] = {}
        for subject, versions in self.key_rows(conn, subjects).items():
            version = max(versions)
            out[subject] = (version, self.unwrap(conn, subject, version, versions[version]))
        return out

    # -- reading -----------------------------------------------------------------------------
    def chunk_rows(
        self,
        conn: Connection,
        chunk: Sequence[str],
        names: Sequence[str] | None = None,
        *,
        own: Collection[str] | None = None,
    ) -> tuple[SubjectRows, dict[str, str]]:
        """Some subjects' rows (only the fields ``names``, if given; ``own``: see
        :func:`vault.tables.record_query`) and record kinds, in one statement."""
        query = t.record_query(lambda column: among(conn, column, chunk), names, own=own)
        return record_rows(chunk, conn.execute(query).all())

    def rows_of(
        self,
        chunk: Sequence[str],
        names: Sequence[str] | None = None,
        *,
        own: Collection[str] | None = None,
    ) -> tuple[SubjectRows, dict[str, str]]:
        """:meth:`chunk_rows` outside any transaction of the caller's, on the hot-path runner:
        the statement is built and compiled once for each set of ``names`` and ``own``, not
        once a call (a batch's slices read one after another)."""
        key = (
            None if names is None else tuple(sorted(set(names))),
            None if own is None else frozenset(own),
        )
        statement = self._many.get(key)
        if statement is None:
            match = functools.partial(self._hot.among, name="subjects")
            statement = t.record_query(match, key[0], own=key[1])
            if len(self._many) >= _STATEMENTS_KEPT:
                self._many.clear()
            self._many[key] = statement
        rows = self._hot.all(statement, subjects=self._hot.listed(chunk))
        return record_rows(chunk, rows)

    def subject_rows(self, subject: str, names: Iterable[str]) -> tuple[SubjectRows, str | None]:
        """One subject's rows (with at least the fields ``names``), and its record kind (None
        if there is no such subject)."""
        statement = _subject_record(names)
        rows, kinds = record_rows((subject,), self._hot.all(statement, subject=subject))
        return rows, kinds.get(subject)

    def read_one(self, subject: str, names: Iterable[str]) -> tuple[str, dict[str, object]]:
        """The record kind and the decrypted ``names`` of one subject, in one read (for
        callers that have checked a decision already)."""
        wanted = set(names)
        rows, kind = self.subject_rows(subject, wanted)
        with self.engine.connect() as conn:  # used only if a key must be read again
            plain = self.decrypt(conn, rows, {subject: wanted})
        assert kind is not None  # decrypt raised UnknownSubject otherwise
        return kind, plain[subject]

    def decrypt(
        self,
        conn: Connection,
        rows: SubjectRows,
        needed: Mapping[str, set[str]],
        aeads: dict[tuple[str, int], Aead] | None = None,
        *,
        decode: bool = True,
    ) -> dict[str, dict[str, object]]:
        """The ``needed`` fields of ``rows``, decrypted. ``aeads`` (subject, key version) ->
        unwrapped data key: filled here, for a caller that needs the keys again. Without
        ``decode``, each value is its typed plaintext (:func:`vault.envelope.encode_value`)."""
        chunk, status = rows.subjects, rows.status
        for subject in chunk:
            if subject not in status:
                raise UnknownSubject("no record for this subject")
            if status[subject] is not None:
                raise Erased("this subject's data was erased")
        key_rows = rows.keys
        if aeads is None:
            aeads = {}
        out: dict[str, dict[str, object]] = {s: {} for s in chunk}
        for subject, name, stored in rows.fields:
            if name not in needed[subject]:
                continue
            ciphertext = stored if type(stored) is bytes else bytes(stored)
            key_id = key_id_of(ciphertext)
            aead = aeads.get((subject, key_id))
            if aead is None:
                wrapped = key_rows.get(subject, {}).get(key_id)
                if wrapped is None:
                    if self.erased(conn, subject):
                        raise Erased("this subject's data was erased")  # erased as we read
                    raise IntegrityError("field ciphertext names a data key that does not exist")
                aead = aeads[(subject, key_id)] = self.unwrap(conn, subject, key_id, wrapped)
            plaintext = decrypt_field(aead, subject, name, ciphertext)
            out[subject][name] = decode_value(plaintext) if decode else plaintext
        return out

    def erased(self, conn: Connection, subject: str) -> bool:
        erased_at = conn.execute(
            select(t.subjects.c.erased_at_ns).where(t.subjects.c.subject == subject)
        ).scalar_one_or_none()
        return erased_at is not None
