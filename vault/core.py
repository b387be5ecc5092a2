"""The :class:`Vault`: the only object that turns ciphertext into personal data, and only
under a :class:`~vault.decision.Decision`.

A facade over the vault's services, each in a module of its own: the records and their write
lock (:mod:`vault.records`), keyed derivations (:mod:`vault.derive`) and RSU scoring
(:mod:`vault.scoring`). It holds what they share (the engine, the key provider, the decision
verifier, the clock) and checks every decision before it lets a value out.

Writes are batched for bulk enrolment: a subject's data key is unwrapped once per batch, new
rows move with one COPY (PostgreSQL) or driver ``executemany`` (SQLite) per table, and subjects
are fetched :data:`CHUNK` at a time (``storekit.bulk.among``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select, text, update
from sqlalchemy import exc as sa_exc

from storekit import truncate_wal
from storekit.bulk import CHUNK, among, chunks, insert_rows
from vault import tables as t
from vault.decision import Decision, DecisionVerifier
from vault.derive import Derivations, new_token
from vault.envelope import encrypt_record
from vault.errors import Erased, InvalidRecord, UnknownSubject, VaultError
from vault.keys.base import KeyProvider, wrapped_version
from vault.masking import apply_mask
from vault.records import (
    Records,
    check_subject,
    count_declaration_write,
    key_context,
    new_data_key,
)
from vault.schema import validate
from vault.scoring import (
    EligibilityAsk,
    Explanation,
    HouseholdOperations,
    HouseholdScoring,
    Models,
    ScoredBatch,
    ScoreEvent,
)

__all__ = ["CHUNK", "Vault"]

Record = tuple[str, str, Mapping[str, object]]
RevealRequest = tuple[str, Sequence[str], Decision]


class Vault:
    """Store, reveal and erase personal data; derive keyed indexes and tokens; score RSU
    households."""

    def __init__(
        self,
        engine: Engine,
        keys: KeyProvider,
        verifier: DecisionVerifier,
        *,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._verifier = verifier
        self._clock = clock
        # The services the facade is made of, for the vault's own modules (rotation, checks)
        # and its tests; callers outside the vault use the methods below.
        self.records = Records(engine, keys, clock=clock)
        self.derive = Derivations(self.records)
        self._scoring = HouseholdScoring(self.records, self.derive, clock)
        self._households = HouseholdOperations(self.records, verifier, clock)

    @property
    def engine(self) -> Engine:
        return self.records.engine

    @property
    def keys(self) -> KeyProvider:
        return self.records.keys

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
            check_subject(subject)
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
        with self.records.write() as conn:
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
            keys = self.records.current_keys(conn, [s for s in subjects if s in existing])
            floor = self.records.kek_floor(conn)
            new_subjects: list[tuple[object, ...]] = []
            new_keys: list[tuple[object, ...]] = []
            for subject in subjects:
                if subject in existing:
                    continue
                dek, aead = new_data_key()
                wrapped = self.records.wrap_at_least(floor, dek, key_context(subject, 1))
                new_subjects.append((subject, merged[subject][0], now, None))
                # kek_version from the header actually written.
                new_keys.append((subject, 1, wrapped_version(wrapped), wrapped, now))
                keys[subject] = (1, aead)
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
            plain[subjects[0]] = self.records.read_one(subjects[0], needed[subjects[0]])[1]
        else:
            # Every field of each record, and of the own tables those asked for.
            own = set().union(*needed.values()) & t.OWN_TABLES.keys()
            with self.engine.connect() as conn:  # used only if a key must be read again
                for chunk in chunks(subjects):
                    rows, _kinds = self.records.rows_of(chunk, own=own)
                    plain.update(self.records.decrypt(conn, rows, needed))
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

    # -- erasing -----------------------------------------------------------------------------
    def erase(self, subject: str) -> None:
        """Crypto-shred ``subject``: destroy its data keys and ciphertexts; reveals then raise
        :class:`Erased`. Law 09.08 art. 8 (erasure) and art. 3 e (no longer than needed).

        Without the data key the ciphertexts are noise even with every remaining key; copies of
        the wrapped key outside the live database (old backups, dead tuples before VACUUM) stay
        openable only until the KEK version that wrapped them is rotated out and retired.
        """
        check_subject(subject)
        with self.records.write() as conn:
            count_declaration_write(conn)  # a rescoring in flight scores it no more
            if self.records.sqlite:
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
        # On SQLite the old pages holding the wrapped key leave the write-ahead log too.
        truncate_wal(self.engine)

    def exists(self, subject: str) -> bool:
        """Whether a (possibly erased) record exists for ``subject``."""
        with self.engine.connect() as conn:
            return (
                conn.execute(
                    select(t.subjects.c.subject).where(t.subjects.c.subject == subject)
                ).first()
                is not None
            )

    # -- keyed derivations (vault.derive) ----------------------------------------------------
    def mac(self, label: str, value: bytes) -> bytes:
        """HMAC-SHA-256 of ``value`` under a key derived for ``label`` (e.g.
        ``"pseudonym:health:v1"``); different labels give unrelated keys (RFC 5869 §3.2)."""
        return self.derive.mac(label, value)

    def subject_tag(self, subject: str) -> str:
        """The keyed hash that stands for ``subject`` in audit entries (never the id itself)."""
        return self.derive.subject_tag(subject)

    def blind_index(self, kind: str, value: str) -> str:
        """Keyed HMAC-SHA-256 of the normalised ``value``: equality lookups (CNIE, name + birth)
        without decryption, and useless to anyone without the vault's key."""
        return self.derive.blind_index(kind, value)

    @staticmethod
    def new_token() -> str:
        """An opaque random token (192 bits, URL-safe); links to nothing by construction."""
        return new_token()

    def deterministic_token(self, purpose: str, value: str) -> str:
        """The same token for the same ``value`` within one declared ``purpose`` (convergent
        tokenisation), for the equality joins that purpose needs; unrelated across purposes.
        Use :meth:`new_token` unless a purpose requires joins (CNDP 2020 recommendation)."""
        return self.derive.deterministic_token(purpose, value)

    # -- RSU scoring (vault.scoring) ---------------------------------------------------------
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
        succession: bool = False,
    ) -> int:
        """Change a household's members inside the vault; returns the new size (rescore next)."""
        return self._households.amend_members(
            subject, add=add, remove=remove, new_head=new_head, succession=succession
        )

    def redeclare_household(self, subject: str, declaration: Mapping[str, object]) -> None:
        """Replace a household's questionnaire, keeping its members (rescore next)."""
        self._households.redeclare(subject, declaration)

    def override_eligibility(self, subject: str, outcome: str | None, decision: Decision) -> None:
        """A reviewer's ``eligible``/``not_eligible`` that :meth:`eligible` answers instead of
        the score, or None to withdraw it (action ``decide_review``)."""
        self._households.override(subject, outcome, decision)

    def eligible(
        self, subject: str, threshold: Decimal | str, decision: Decision, *, comparison: str = "lte"
    ) -> bool:
        """Score at or below ``threshold``, under an ``eligibility`` decision; never the score."""
        return self._households.eligible(subject, threshold, decision, comparison=comparison)

    def eligible_many(self, asks: Sequence[EligibilityAsk]) -> list[bool | VaultError]:
        """:meth:`eligible` of many households through one read; each answer, or the error
        its single call would raise, in order (:meth:`HouseholdOperations.eligible_many`)."""
        return self._households.eligible_many(asks)

    def explain(
        self, subject: str, decision: Decision, *, language: str = "fr",
        models: Models | None = None,
    ) -> Explanation:  # fmt: skip
        """Per-variable contributions to the household's score (action ``read_score`` for a
        member, ``open_review`` for the officer reviewing it)."""
        return self._households.explain(subject, decision, language=language, models=models)

    # -- operations --------------------------------------------------------------------------
    def ping(self) -> None:
        """Raise if the vault store or the key provider is unreachable."""
        with self.engine.connect() as conn:
            conn.execute(select(func.count()).select_from(t.secrets))
        self.keys.ping()

    def status(self) -> dict[str, Any]:
        """Counts an operator needs for ``sijill keys status``; no personal data."""
        with self.engine.connect() as conn:
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
            "provider": self.keys.name,
            "current_version": self.keys.current_version,
            "versions": self.keys.versions(),
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
