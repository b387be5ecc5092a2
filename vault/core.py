"""The :class:`Vault`: the only object that turns ciphertext into personal data, and only
under a :class:`~vault.decision.Decision`.

Reads and writes are batched for bulk enrolment and national rescoring: a subject's data key is
unwrapped once per batch, new rows move with one COPY (PostgreSQL) or driver ``executemany``
(SQLite) per table, and subjects are fetched :data:`CHUNK` at a time (``storekit.bulk.among``).
A single subject (the agency path) is read in one statement on ``storekit``'s hot path.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import re
import secrets as pysecrets
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Engine,
    Select,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy import exc as sa_exc

from storekit import hot_sql
from storekit.bulk import CHUNK, among, chunks, insert_rows
from vault import tables as t
from vault.decision import Decision, DecisionVerifier
from vault.envelope import (
    decode_value,
    decrypt_field,
    encrypt_record,
    key_id_of,
)
from vault.errors import (
    Erased,
    IntegrityError,
    InvalidRecord,
    KeyProviderError,
    UnknownSubject,
    VaultError,
)
from vault.keys.base import KeyProvider, wrapped_version
from vault.masking import apply_mask
from vault.normalise import normalise_identifier, normalise_text
from vault.schema import validate
from vault.scoring import (
    Explanation,
    HouseholdScoring,
    Models,
    ScoredBatch,
    ScoreEvent,
    count_declaration_write,
)

__all__ = ["CHUNK", "Vault"]

_SUBJECT = re.compile(r"\A[A-Za-z0-9._:\-]{1,128}\Z")
_LABEL = re.compile(r"\A[A-Za-z0-9_.:\-]{1,64}\Z")
# Blind-index kinds whose values are document numbers rather than names.
_IDENTIFIER_KINDS = frozenset({"cnie", "idcs", "phone"})
_ROOT = "root"
# pg_advisory_xact_lock key of the KEK rotation lock (any constant unique to this lock).
_ROTATION_LOCK = 0x5153_4B45_4B00  # "SQKEK"

Record = tuple[str, str, Mapping[str, object]]
RevealRequest = tuple[str, Sequence[str], Decision]


# The single-subject reveal reads the subject's status, data keys and ciphertexts in one
# statement (one snapshot, one round trip), compiled once. A union with the fields' own tables
# (tables.OWN_TABLES) costs SQLite a temporary index (about 7 µs a read), so each read takes
# only the tables of the fields it wants (_subject_record).
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
class _SubjectRows:
    """What a reveal reads for some subjects, in this order: erasure status, wrapped data
    keys, field ciphertexts."""

    subjects: Sequence[str]
    status: Mapping[str, int | None]
    keys: Mapping[str, Mapping[int, bytes]]
    fields: Sequence[tuple[str, str, bytes]]


def _record_rows(
    subjects: Sequence[str], rows: Iterable[Sequence[Any]]
) -> tuple[_SubjectRows, dict[str, str]]:
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
    return _SubjectRows(tuple(subjects), status, keys, listed), kinds


def _sha256(data: bytes = b"") -> Any:
    return hashlib.sha256(data)


def _check_subject(subject: object) -> str:
    if not isinstance(subject, str) or not _SUBJECT.match(subject):
        raise InvalidRecord("subject id must be 1-128 characters of [A-Za-z0-9._:-]")
    return subject


def _key_context(subject: str, version: int) -> bytes:
    # Binds a wrapped data key to its row: copied to another subject it does not unwrap.
    return f"dek\x00{subject}\x00{version}".encode()


class Vault:
    """Store, reveal and erase personal data; derive keyed indexes and tokens."""

    def __init__(
        self,
        engine: Engine,
        keys: KeyProvider,
        verifier: DecisionVerifier,
        *,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._engine = engine
        self._keys = keys
        self._verifier = verifier
        self._clock = clock
        self._sqlite = engine.dialect.name == "sqlite"
        self._hot = hot_sql(engine)
        self._root_lock = threading.Lock()
        self._root: bytes | None = None
        self._derived: dict[str, bytes] = {}
        self._hmacs: dict[str, hmac.HMAC] = {}
        self._scoring = HouseholdScoring(self)

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def keys(self) -> KeyProvider:
        return self._keys

    # -- transactions ------------------------------------------------------------------------
    @contextmanager
    def _write(self, *, exclusive: bool = False) -> Iterator[Connection]:
        """A write transaction. Writers share the rotation lock; the rotation's final check and
        retirement take it exclusively, so no data key wrapped under a KEK version about to be
        retired can commit unseen (see :meth:`_kek_floor` and vault.rotation)."""
        with self._engine.begin() as conn:
            self._write_lock(conn, exclusive=exclusive)
            yield conn

    def _write_lock(self, conn: Connection, *, exclusive: bool = False) -> None:
        """Take the locks of :meth:`_write` in ``conn``'s transaction."""
        if self._sqlite:
            # Take SQLite's write lock before the first read: a deferred transaction that
            # reads and then writes fails with SQLITE_BUSY instead of waiting when another
            # writer commits in between. A write that touches no row still takes the lock,
            # and it serialises all writers, which also makes it the rotation lock.
            conn.execute(text("DELETE FROM vault_rotations WHERE 1 = 0"))
        else:
            lock = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
            conn.execute(text(f"SELECT {lock}(:k)"), {"k": _ROTATION_LOCK})

    def _kek_floor(self, conn: Connection) -> int:
        """The newest KEK version a rotation has started towards: nothing may be wrapped under
        an older one from then on (it may be retired as soon as the rotation's last pass ends,
        while this process's provider may still hold a stale view of the versions)."""
        floor = conn.execute(select(func.max(t.rotations.c.target_version))).scalar_one()
        return int(floor or 0)

    def _wrap_at_least(self, floor: int, key: bytes, context: bytes) -> bytes:
        wrapped = self._keys.wrap(key, context)
        if wrapped_version(wrapped) < floor:
            self._keys.versions()  # forces a fresh look at the provider's versions
            wrapped = self._keys.wrap(key, context)
            if wrapped_version(wrapped) < floor:
                raise KeyProviderError("the key provider does not have the rotated KEK version")
        return wrapped

    # -- storing -----------------------------------------------------------------------------
    def store(self, subject: str, kind: str, fields: Mapping[str, object]) -> None:
        """Create or update ``subject``'s record with ``fields`` (validated first, all or none)."""
        self.store_many([(subject, kind, fields)])

    def store_many(self, records: Iterable[Record]) -> int:
        """Store many records in one transaction; returns the number of records.

        Every record is validated before anything is written: one bad record stores nothing.
        A subject's later record in the same batch overrides earlier values field by field.
        """
        merged: dict[str, tuple[str, dict[str, object]]] = {}
        count = 0
        for subject, kind, fields in records:
            _check_subject(subject)
            validate(kind, fields)
            count += 1
            previous = merged.get(subject)
            if previous is None:
                merged[subject] = (kind, dict(fields))
            elif previous[0] != kind:
                raise InvalidRecord("a subject cannot change its record kind")
            else:
                previous[1].update(fields)
        if not merged:
            return 0
        try:
            self._store_merged(merged)
        except sa_exc.IntegrityError:
            # Another writer created one of these subjects between our read and our insert
            # (PostgreSQL read committed); the second attempt sees it and updates instead.
            self._store_merged(merged)
        return count

    def _store_merged(self, merged: Mapping[str, tuple[str, dict[str, object]]]) -> None:
        now = self._clock()
        subjects = list(merged)
        with self._write() as conn:
            existing: dict[str, tuple[str, int | None]] = {}
            for chunk in chunks(subjects):
                for row in conn.execute(
                    select(
                        t.subjects.c.subject, t.subjects.c.kind, t.subjects.c.erased_at_ns
                    ).where(among(conn, t.subjects.c.subject, chunk))
                ):
                    existing[row.subject] = (row.kind, row.erased_at_ns)
            for subject, (kind, _erased) in existing.items():
                if _erased is not None:
                    raise Erased("this subject was erased; enrol under a new subject id")
                if kind != merged[subject][0]:
                    raise InvalidRecord("a subject cannot change its record kind")
            keys = self._current_keys(conn, [s for s in subjects if s in existing])
            floor = self._kek_floor(conn)
            new_subjects: list[tuple[object, ...]] = []
            new_keys: list[tuple[object, ...]] = []
            for subject in subjects:
                if subject in existing:
                    continue
                dek = AESGCM.generate_key(bit_length=256)
                wrapped = self._wrap_at_least(floor, dek, _key_context(subject, 1))
                new_subjects.append((subject, merged[subject][0], now, None))
                # kek_version from the header actually written.
                new_keys.append((subject, 1, wrapped_version(wrapped), wrapped, now))
                keys[subject] = (1, AESGCM(dek))
            insert_rows(conn, t.subjects, new_subjects)
            insert_rows(conn, t.data_keys, new_keys)
            replaced = [(subject, name) for subject in existing for name in merged[subject][1]]
            if any(name == "declaration" for _subject, name in replaced):
                count_declaration_write(conn)
            rows: list[tuple[str, str, bytes]] = []
            for subject, (_kind, values) in merged.items():
                key_id, aead = keys[subject]
                rows += encrypt_record(aead, key_id, subject, values)
            t.write_fields(conn, rows, replaced)

    # -- data keys ---------------------------------------------------------------------------
    def _key_rows(self, conn: Connection, subjects: Sequence[str]) -> dict[str, dict[int, bytes]]:
        found: dict[str, dict[int, bytes]] = {}
        for chunk in chunks(subjects):
            for row in conn.execute(
                select(t.data_keys.c.subject, t.data_keys.c.version, t.data_keys.c.wrapped).where(
                    among(conn, t.data_keys.c.subject, chunk)
                )
            ):
                found.setdefault(row.subject, {})[row.version] = bytes(row.wrapped)
        return found

    def _unwrap(self, conn: Connection, subject: str, version: int, wrapped: bytes) -> AESGCM:
        try:
            return AESGCM(self._keys.unwrap(wrapped, _key_context(subject, version)))
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
            return AESGCM(self._keys.unwrap(bytes(again), _key_context(subject, version)))

    def _current_keys(
        self, conn: Connection, subjects: Sequence[str]
    ) -> dict[str, tuple[int, AESGCM]]:
        out: dict[str, tuple[int, AESGCM]] = {}
        for subject, versions in self._key_rows(conn, subjects).items():
            version = max(versions)
            out[subject] = (version, self._unwrap(conn, subject, version, versions[version]))
        return out

    # -- revealing ---------------------------------------------------------------------------
    def reveal(self, subject: str, fields: Sequence[str], decision: Decision) -> dict[str, object]:
        """The requested fields the decision released, masked as it obliges.

        Raises :class:`DecisionRefused` for a forged, expired or other-subject decision,
        :class:`UnknownSubject`, :class:`Erased`, or :class:`IntegrityError` on tampering.
        """
        return self.reveal_many([(subject, fields, decision)])[0]

    def reveal_many(self, requests: Sequence[RevealRequest]) -> list[dict[str, object]]:
        """Many reveals at once; every decision is verified before any ciphertext is read."""
        now = self._clock()
        wanted: list[list[str]] = []
        for subject, names, decision in requests:
            self._verifier.verify(decision, subject, now_ns=now)
            released = set(decision.fields)
            # A decision for other fields reveals only its own (DESIGN.md "Policy decisions").
            wanted.append([n for n in dict.fromkeys(names) if n in released])
        # Only released fields are decrypted at all: the others never exist in plaintext here.
        needed: dict[str, set[str]] = {}
        for (subject, _names, _decision), names in zip(requests, wanted, strict=True):
            needed.setdefault(subject, set()).update(names)
        subjects = list(needed)
        plain: dict[str, dict[str, object]] = {}
        if len(subjects) == 1:
            # The agency path: one subject, one statement on the hot-path runner.
            plain[subjects[0]] = self._read_one(subjects[0], needed[subjects[0]])[1]
        else:
            # Every field of each record, and of the own tables those asked for.
            own = set().union(*needed.values()) & t.OWN_TABLES.keys()
            with self._engine.connect() as conn:
                for chunk in chunks(subjects):
                    rows, _kinds = self._chunk_rows(conn, chunk, own=own)
                    plain.update(self._decrypt(conn, rows, needed))
        results: list[dict[str, object]] = []
        for (subject, _names, decision), names in zip(requests, wanted, strict=True):
            record = plain[subject]
            obligations = decision.obligations
            out: dict[str, object] = {}
            for name in names:
                if name in record:
                    rule = obligations.get(name)
                    out[name] = record[name] if rule is None else apply_mask(rule, record[name])
            results.append(out)
        return results

    def _chunk_rows(
        self,
        conn: Connection,
        chunk: Sequence[str],
        names: Sequence[str] | None = None,
        *,
        own: Collection[str] | None = None,
    ) -> tuple[_SubjectRows, dict[str, str]]:
        """Some subjects' rows (only the fields ``names``, if given; ``own``: see
        :func:`vault.tables.record_query`) and record kinds, in one statement."""
        query = t.record_query(lambda column: among(conn, column, chunk), names, own=own)
        return _record_rows(chunk, conn.execute(query).all())

    def _subject_rows(self, subject: str, names: Iterable[str]) -> tuple[_SubjectRows, str | None]:
        """One subject's rows (with at least the fields ``names``), and its record kind (None
        if there is no such subject)."""
        statement = _subject_record(names)
        rows, kinds = _record_rows((subject,), self._hot.all(statement, subject=subject))
        return rows, kinds.get(subject)

    def _read_one(self, subject: str, names: Iterable[str]) -> tuple[str, dict[str, object]]:
        """The record kind and the decrypted ``names`` of one subject, in one read (for
        callers that have checked a decision already)."""
        wanted = set(names)
        rows, kind = self._subject_rows(subject, wanted)
        with self._engine.connect() as conn:  # used only if a key must be read again
            plain = self._decrypt(conn, rows, {subject: wanted})
        assert kind is not None  # _decrypt raised UnknownSubject otherwise
        return kind, plain[subject]

    def _decrypt(
        self,
        conn: Connection,
        rows: _SubjectRows,
        needed: Mapping[str, set[str]],
        aeads: dict[tuple[str, int], AESGCM] | None = None,
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
                    if self._erased(conn, subject):
                        raise Erased("this subject's data was erased")  # erased as we read
                    raise IntegrityError("field ciphertext names a data key that does not exist")
                aead = aeads[(subject, key_id)] = self._unwrap(conn, subject, key_id, wrapped)
            plaintext = decrypt_field(aead, subject, name, ciphertext)
            out[subject][name] = decode_value(plaintext) if decode else plaintext
        return out

    # -- erasing -----------------------------------------------------------------------------
    def erase(self, subject: str) -> None:
        """Crypto-shred ``subject``: destroy its data keys and ciphertexts; reveals then raise
        :class:`Erased`. Law 09.08 art. 8 (erasure) and art. 3 e (no longer than needed).

        Without the data key the ciphertexts are noise even with every remaining key; copies of
        the wrapped key outside the live database (old backups, dead tuples before VACUUM) stay
        openable only until the KEK version that wrapped them is rotated out and retired.
        """
        _check_subject(subject)
        with self._write() as conn:
            count_declaration_write(conn)  # a rescoring in flight scores it no more
            if self._sqlite:
                # Zero deleted cells instead of leaving them in free pages of the file.
                conn.execute(text("PRAGMA secure_delete = ON"))
            erased = conn.execute(
                select(t.subjects.c.erased_at_ns).where(t.subjects.c.subject == subject)
            ).first()
            if erased is None:
                raise UnknownSubject("no record for this subject")
            conn.execute(delete(t.data_keys).where(t.data_keys.c.subject == subject))
            for table in (t.fields, *t.OWN_TABLES.values()):
                conn.execute(delete(table).where(table.c.subject == subject))
            if erased.erased_at_ns is None:
                conn.execute(
                    update(t.subjects)
                    .where(t.subjects.c.subject == subject)
                    .values(erased_at_ns=self._clock())
                )
        if self._sqlite:
            # Move the zeroed pages into the main file and empty the WAL, so the old frames
            # holding the wrapped key are gone from disk too. Best effort: a long reader can
            # hold the checkpoint back; the next one completes it.
            raw = self._engine.raw_connection()  # outside any transaction, as the pragma needs
            try:
                with suppress(Exception):
                    raw.driver_connection.execute(  # type: ignore[union-attr]
                        "PRAGMA wal_checkpoint(TRUNCATE)"
                    )
            finally:
                raw.close()

    def _erased(self, conn: Connection, subject: str) -> bool:
        erased_at = conn.execute(
            select(t.subjects.c.erased_at_ns).where(t.subjects.c.subject == subject)
        ).scalar_one_or_none()
        return erased_at is not None

    def exists(self, subject: str) -> bool:
        """Whether a (possibly erased) record exists for ``subject``."""
        with self._engine.connect() as conn:
            return (
                conn.execute(
                    select(t.subjects.c.subject).where(t.subjects.c.subject == subject)
                ).first()
                is not None
            )

    # -- keyed derivations -------------------------------------------------------------------
    def _root_secret(self) -> bytes:
        if self._root is not None:
            return self._root
        with self._root_lock:
            if self._root is None:
                self._root = self._load_or_create_root()
            return self._root

    def _load_or_create_root(self) -> bytes:
        context = b"secret\x00root"
        with self._engine.connect() as conn:
            wrapped = conn.execute(
                select(t.secrets.c.wrapped).where(t.secrets.c.name == _ROOT)
            ).scalar_one_or_none()
        if wrapped is None:
            # First use: 256 random bits from which every MAC, blind-index and token key is
            # derived (HKDF, RFC 5869), stored only wrapped by the KEK.
            root = os.urandom(32)
            try:
                with self._write() as conn:
                    sealed = self._wrap_at_least(self._kek_floor(conn), root, context)
                    conn.execute(
                        insert(t.secrets),
                        {"name": _ROOT, "kek_version": wrapped_version(sealed), "wrapped": sealed},
                    )
                return root
            except sa_exc.IntegrityError:
                pass  # another process stored it first: use theirs
            with self._engine.connect() as conn:
                wrapped = conn.execute(
                    select(t.secrets.c.wrapped).where(t.secrets.c.name == _ROOT)
                ).scalar_one()
        try:
            return self._keys.unwrap(bytes(wrapped), context)
        except IntegrityError:
            # Rotated and retired between our read and the unwrap: read it once more.
            with self._engine.connect() as conn:
                wrapped = conn.execute(
                    select(t.secrets.c.wrapped).where(t.secrets.c.name == _ROOT)
                ).scalar_one()
            return self._keys.unwrap(bytes(wrapped), context)

    def _derived_key(self, label: str) -> bytes:
        key = self._derived.get(label)
        if key is None:
            key = HKDF(
                algorithm=hashes.SHA256(),
                length=32,
                salt=b"sijill/vault/v1",
                info=label.encode(),
            ).derive(self._root_secret())
            self._derived[label] = key
        return key

    def _hmac(self, label: str, value: bytes) -> bytes:
        """HMAC-SHA-256 of ``value`` under the key derived for ``label``.

        The keyed HMAC is set up once a label and copied for each message: ``hmac.digest`` sets
        the key up on every call (two SHA-256 blocks and OpenSSL's algorithm lookup), which
        doubles the cost of the short messages hashed here (subject tags, blind indexes: two
        a household in a national rescoring)."""
        keyed = self._hmacs.get(label)
        if keyed is None:
            # A constructor, not hashlib.sha256 itself: hmac then keeps the two hashlib states
            # that copy() clones, rather than an OpenSSL HMAC context (slower to copy).
            keyed = self._hmacs[label] = hmac.new(self._derived_key(label), digestmod=_sha256)
        h = keyed.copy()
        h.update(value)
        return h.digest()

    def mac(self, label: str, value: bytes) -> bytes:
        """HMAC-SHA-256 of ``value`` under a key derived for ``label`` (e.g.
        ``"pseudonym:health:v1"``); different labels give unrelated keys (RFC 5869 §3.2)."""
        if not isinstance(label, str) or not _LABEL.match(label):
            raise VaultError("a MAC label is 1-64 characters of [A-Za-z0-9_.:-]")
        return self._hmac("mac:" + label, value)

    def subject_tag(self, subject: str) -> str:
        """The keyed hash that stands for ``subject`` in audit entries (never the id itself)."""
        return self._hmac("subject-tag:v1", subject.encode()).hex()

    def blind_index(self, kind: str, value: str) -> str:
        """Keyed HMAC-SHA-256 of the normalised ``value``: equality lookups (CNIE, name + birth)
        without decryption, and useless to anyone without the vault's key."""
        if not isinstance(kind, str) or not _LABEL.match(kind):
            raise VaultError("a blind-index kind is 1-64 characters of [A-Za-z0-9_.:-]")
        if not isinstance(value, str):
            raise VaultError("a blind index is computed over text")
        norm = normalise_identifier(value) if kind in _IDENTIFIER_KINDS else normalise_text(value)
        return self._hmac(f"blind-index:{kind}:v1", norm.encode()).hex()

    # -- tokens ------------------------------------------------------------------------------
    @staticmethod
    def new_token() -> str:
        """An opaque random token (192 bits, URL-safe); links to nothing by construction."""
        return pysecrets.token_urlsafe(24)

    def deterministic_token(self, purpose: str, value: str) -> str:
        """The same token for the same ``value`` within one declared ``purpose`` (convergent
        tokenisation), for the equality joins that purpose needs; unrelated across purposes.
        Use :meth:`new_token` unless a purpose requires joins (CNDP 2020 recommendation)."""
        digest = self.mac(f"token:{purpose}", value.encode())
        return "dt_" + base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")

    # -- RSU scoring (vault/scoring.py) -------------------------------------------------------
    def score(self, subject: str, models: Models) -> ScoreEvent:
        """Score one household from its declaration; the score is stored encrypted."""
        return self._scoring.score(subject, models)

    def score_many(
        self,
        subjects: Sequence[str],
        models: Models,
        *,
        write_guard: AbstractContextManager[Any] | None = None,
    ) -> list[ScoreEvent]:
        """Score households in batches (numpy); see :meth:`HouseholdScoring.score_many`."""
        return self._scoring.score_many(subjects, models, write_guard=write_guard)

    def score_compute(
        self, subjects: Sequence[str], models: Models, *, skip_gone: bool = False
    ) -> ScoredBatch:
        """Score households without writing (reads only): a sealed batch for
        :meth:`score_store`, in this process or another one (:meth:`HouseholdScoring.compute`)."""
        return self._scoring.compute(subjects, models, skip_gone=skip_gone)

    def score_store(
        self, batch: ScoredBatch, models: Models, *, conn: Connection | None = None
    ) -> list[ScoreEvent]:
        """Store a computed batch (in ``conn``, a write transaction the caller opened on the
        vault's database, if given); see :meth:`HouseholdScoring.store`."""
        return self._scoring.store(batch, models, conn=conn)

    def amend_household(
        self,
        subject: str,
        *,
        add: Sequence[Mapping[str, object]] = (),
        remove: Sequence[str] = (),
        new_head: str | None = None,
    ) -> int:
        """Change a household's members inside the vault; returns the new size (rescore next)."""
        return self._scoring.amend_members(subject, add=add, remove=remove, new_head=new_head)

    def eligible(
        self, subject: str, threshold: Decimal | str, decision: Decision, *, comparison: str = "lte"
    ) -> bool:
        """Score at or below ``threshold``, under an ``eligibility`` decision; never the score."""
        return self._scoring.eligible(subject, threshold, decision, comparison=comparison)

    def explain(
        self, subject: str, decision: Decision, *, language: str = "fr",
        models: Models | None = None,
    ) -> Explanation:  # fmt: skip
        """Per-variable contributions to the household's own score (action ``read_score``)."""
        return self._scoring.explain(subject, decision, language=language, models=models)

    # -- operations --------------------------------------------------------------------------
    def ping(self) -> None:
        """Raise if the vault store or the key provider is unreachable."""
        with self._engine.connect() as conn:
            conn.execute(select(func.count()).select_from(t.secrets))
        self._keys.ping()

    def status(self) -> dict[str, Any]:
        """Counts an operator needs for ``sijill keys status``; no personal data."""
        with self._engine.connect() as conn:
            by_version = {
                int(v): int(n)
                for v, n in conn.execute(
                    select(t.data_keys.c.kek_version, func.count()).group_by(
                        t.data_keys.c.kek_version
                    )
                )
            }
            subjects = conn.execute(select(func.count()).select_from(t.subjects)).scalar_one()
            erased = conn.execute(
                select(func.count())
                .select_from(t.subjects)
                .where(t.subjects.c.erased_at_ns.is_not(None))
            ).scalar_one()
            pending = conn.execute(
                select(
                    t.rotations.c.target_version, t.rotations.c.rewrapped, t.rotations.c.total
                ).where(t.rotations.c.finished_at_ns.is_(None))
            ).first()
        return {
            "provider": self._keys.name,
            "current_version": self._keys.current_version,
            "versions": self._keys.versions(),
            "data_keys_by_kek_version": by_version,
            "subjects": int(subjects),
            "erased": int(erased),
            "rotation_in_progress": None
            if pending is None
            else {
                "target_version": pending.target_version,
                "rewrapped": pending.rewrapped,
                "total": pending.total,
            },
        }
