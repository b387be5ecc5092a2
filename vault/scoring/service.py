"""Batch scoring of RSU households, inside the trusted boundary.

The proxy-means-test (PMT) index of a household is computed here and nowhere else, because only
the vault may read the declaration in plaintext (DESIGN.md "Trust zones"). To the scoring
caller leaves a :class:`ScoreEvent`: model version, model digest and a keyed digest of the
inputs, never the score or a declared value (the caller writes the audit entry; the vault
imports no audit code). The score itself is stored encrypted, as the record's field ``score``.

Scoring is split into a read-only :meth:`HouseholdScoring.compute` (any number of processes,
beside any writer) and :meth:`HouseholdScoring.store` (under the write lock), joined by a sealed
:class:`ScoredBatch`. Feature vectors (:mod:`vault.scoring.features`) spare a rescoring the
parsing of every declaration; the numbers go through :mod:`vault.scoring.model`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, NamedTuple

from sqlalchemy import Connection, func, select

from storekit.bulk import among, chunks, upsert_rows
from vault import tables as t
from vault.derive import Derivations
from vault.envelope import NONCE_END as _NONCE_END
from vault.envelope import Aead, encrypt_record
from vault.errors import InvalidRecord
from vault.records import Records, SubjectRows, declaration_writes
from vault.scoring.features import (
    AREA,
    FEATURES_FIELD,
    HEAD,
    Vectors,
    current_vector,
    feature_vector,
    parse_declaration,
)
from vault.scoring.household import SCORE_FIELD
from vault.scoring.model import Models, ScoringModel, remember, select_model
from vault.scoring.reading import open_rows, read_households

__all__ = ["HouseholdScoring", "ScoreEvent", "ScoredBatch"]

_INPUTS_LABEL = "rsu-inputs:v1"
_TEXT = b"s"  # the type tag of a text value's plaintext (vault.envelope.encode_value)
_BYTES = b"b"  # and of a bytes value's (a feature vector)
# What a score was computed from (_Scored.source): a stored feature vector or the declaration,
# then that ciphertext's header and nonce. A rewrite of either draws a new nonce.
_FROM_VECTOR, _FROM_DECLARATION = b"v", b"d"


class ScoreEvent(NamedTuple):
    """What the caller may record about one scoring (audit entry): no score, no value.

    ``inputs_digest`` is a keyed MAC of the feature vector as scored (every variable the models
    read, the area, the region and the head): it proves which inputs were used without being
    invertible by anyone outside the vault (a plain hash of a small declaration could be
    brute-forced).
    """

    subject: str
    model_version: str
    model_digest: str
    inputs_digest: str
    scored_at_ns: int
    # subject_tag of the head's IDCS: the entry shows in the head's own access log.
    head_tag: str | None = None


class _Scored(NamedTuple):
    # The encrypted score, and the feature vector when it was derived for this score:
    # (subject, field, ciphertext) rows.
    rows: list[tuple[str, str, bytes]]
    event: ScoreEvent
    # What the score was computed from: _FROM_VECTOR or _FROM_DECLARATION, then the header and
    # nonce of that ciphertext.
    source: bytes


class ScoredBatch:
    """Scores computed and encrypted by :meth:`HouseholdScoring.compute`, not yet stored:
    sealed (the caller sees the events, never a ciphertext), to be handed to
    :meth:`HouseholdScoring.store`. Picklable, so a worker process can compute it and a writer
    process store it."""

    __slots__ = ("_computed", "_gone", "_since")

    def __init__(
        self,
        computed: dict[str, _Scored],
        since: int | None = None,
        *,
        gone: Sequence[str] | None = None,
    ) -> None:
        self._computed = computed
        # The declaration-rewrite count read before the declarations (None: unknown).
        self._since = since
        # Households left out because their record was erased or unknown (None: not skipped,
        # refused: the batch was computed without ``skip_gone``).
        self._gone = None if gone is None else list(gone)

    def __len__(self) -> int:
        return len(self._computed)

    # Pickled as plain tuples and lists, which pickle handles in C (named tuples take a
    # Python-level call each): a rescoring hands over a batch of thousands.
    def __getstate__(self) -> tuple[Any, ...]:
        scored = [(rows, tuple(event), source) for rows, event, source in self._computed.values()]
        return scored, self._since, self._gone

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        scored, self._since, self._gone = state
        self._computed = {
            event[0]: _Scored(rows, ScoreEvent._make(event), source)
            for rows, event, source in scored
        }

    @property
    def events(self) -> list[ScoreEvent]:
        return [entry.event for entry in self._computed.values()]

    @property
    def gone(self) -> list[str]:
        """Households left out, their record erased or unknown (``skip_gone``)."""
        return list(self._gone or ())


class HouseholdScoring:
    """Batch scoring of one vault store's households (exposed as ``Vault`` methods)."""

    def __init__(self, records: Records, derive: Derivations, clock: Callable[[], int]) -> None:
        self._records = records
        self._derive = derive
        self._clock = clock

    def score(self, subject: str, models: Models) -> ScoreEvent:
        return self.score_many([subject], models)[0]

    def score_many(
        self,
        subjects: Sequence[str],
        models: Models,
        *,
        write_guard: AbstractContextManager[Any] | None = None,
    ) -> list[ScoreEvent]:
        """Score households and store each score encrypted, in one write transaction:
        :meth:`compute` then :meth:`store`.

        ``write_guard`` (a lock shared by cooperating writer processes) is held around the
        write transaction only: a process queued on it wakes as soon as it is released, where
        SQLite's busy handler would sleep and poll for the file lock.
        """
        return self.store(self.compute(subjects, models), models, write_guard=write_guard)

    def compute(
        self, subjects: Sequence[str], models: Models, *, skip_gone: bool = False
    ) -> ScoredBatch:
        """Decrypt the declarations, score them and encrypt the scores, writing nothing: the
        result is sealed, to be handed to :meth:`store` (in this process or another one with a
        vault on the same store). Reads only, so it runs beside any writer.

        ``skip_gone``: a household whose record was erased (dissolved meanwhile) or is unknown
        is left out, in :attr:`ScoredBatch.gone`, and so is one erased before the store,
        rather than failing the whole batch (a national rescoring decides what that means)."""
        remember(models)
        ordered = list(dict.fromkeys(subjects))
        # Load (or create) the root secret behind the MACs now: creating it inside a write
        # transaction would wait on our own SQLite write lock.
        self._derive.root_secret()
        computed: dict[str, _Scored] = {}
        since: int | None = None
        gone: set[str] | None = set() if skip_gone else None
        if ordered:
            with self._records.engine.connect() as conn:
                # Before the declarations: if the count has not moved when the batch is
                # stored, none of what is read below has been rewritten since.
                since = declaration_writes(conn)
                for chunk in chunks(ordered):
                    computed.update(self._compute(conn, chunk, models, gone=gone))
        return ScoredBatch(
            computed,
            since,
            gone=None if gone is None else [s for s in ordered if s in gone],
        )

    def store(
        self,
        batch: ScoredBatch,
        models: Models,
        *,
        conn: Connection | None = None,
        write_guard: AbstractContextManager[Any] | None = None,
    ) -> list[ScoreEvent]:
        """Write a :meth:`compute` result; returns one event per household, in its order.

        Checks first, under the write lock, that no declaration changed since it was scored
        (a membership change, ``Vault.amend_household``) and scores those again: their events are
        new ones. Scoring the same inputs with the same model again writes the same values
        (idempotent), so a batch interrupted between here and its caller's bookkeeping can
        simply be redone.

        ``conn``: a write transaction the caller opened on this vault's database (and
        commits); without it, the write is a transaction of its own.
        """
        remember(models)
        computed = dict(batch._computed)
        if not computed:
            return []
        self._derive.root_secret()  # before any lock: a stale declaration is scored again
        if conn is None:
            with write_guard or nullcontext(), self._records.write() as own:
                self._store(own, computed, models, batch)
        else:
            self._records.write_lock(conn)
            self._store(conn, computed, models, batch)
        return [entry.event for entry in computed.values()]

    def _store(
        self, conn: Connection, computed: dict[str, _Scored], models: Models, batch: ScoredBatch
    ) -> None:
        since = batch._since
        # The count moved (or is unknown): some declaration was rewritten since the batch read
        # them, and the households concerned are scored again. Unmoved, nothing is.
        if since is None or declaration_writes(conn, lock=True) != since:
            self._rescore_stale(conn, computed, models, skip_gone=batch._gone is not None)
        rows = [row for scored in computed.values() for row in scored.rows]
        # The score and the feature vector are fields of their own tables (vault.tables):
        # (subject, ciphertext) rows replaced in place, one statement a table.
        for name, table in t.OWN_TABLES.items():
            upsert_rows(conn, table, [(s, c) for s, field, c in rows if field == name])

    def _rescore_stale(
        self,
        conn: Connection,
        computed: dict[str, _Scored],
        models: Models,
        *,
        skip_gone: bool = False,
    ) -> None:
        """Score again, in ``computed``, the households whose declaration was rewritten since
        it was computed. With ``skip_gone``, one erased since is dropped from ``computed``
        (see :meth:`compute`)."""
        ordered = list(computed)
        # A declaration rewritten since (amend_household) has a new random nonce, and its
        # feature vector is deleted with it: the header and nonce of what each score was
        # computed from tell it apart, without reading a whole ciphertext again.
        current: dict[str, bytes] = {}
        for chunk in chunks(ordered):
            for subject, head in conn.execute(
                select(
                    t.features.c.subject, func.substr(t.features.c.ciphertext, 1, _NONCE_END)
                ).where(among(conn, t.features.c.subject, chunk))
            ).all():
                current[subject] = _FROM_VECTOR + bytes(head)
            for subject, head in conn.execute(
                select(t.fields.c.subject, func.substr(t.fields.c.ciphertext, 1, _NONCE_END)).where(
                    among(conn, t.fields.c.subject, chunk), t.fields.c.field == "declaration"
                )
            ).all():
                # A score computed from the declaration compares with the declaration.
                if computed[subject].source[:1] == _FROM_DECLARATION:
                    current[subject] = _FROM_DECLARATION + bytes(head)
        stale = [s for s in ordered if current.get(s) != computed[s].source]
        gone: set[str] | None = set() if skip_gone else None
        for chunk in chunks(stale):
            computed.update(self._compute(conn, chunk, models, gone=gone))
        for subject in gone or ():
            del computed[subject]

    def _compute(
        self,
        conn: Connection,
        chunk: Sequence[str],
        models: Models,
        *,
        gone: set[str] | None = None,
    ) -> dict[str, _Scored]:
        """Per subject: the encrypted score rows (and the feature vector's, when it was derived
        here), the event, and the source the score was computed from. ``gone``: see
        :func:`~vault.scoring.reading.read_households`."""
        raw: dict[tuple[str, str], bytes] = {}
        rows = self._vector_rows(conn, chunk)
        plain, keys = open_rows(self._records, conn, rows, (FEATURES_FIELD,), raw=raw, decode=False)
        blobs: dict[str, bytes] = {}
        sources: dict[str, bytes] = {}
        derive: list[str] = []
        for subject in chunk:
            typed = plain.get(subject, {}).get(FEATURES_FIELD)
            if isinstance(typed, bytes) and typed[:1] == _BYTES and current_vector(typed[1:]):
                blobs[subject] = typed[1:]
                sources[subject] = _FROM_VECTOR + raw[(subject, FEATURES_FIELD)][:_NONCE_END]
            else:
                derive.append(subject)
        derived = self._derive_vectors(conn, derive, blobs, sources, keys, gone=gone)
        if gone:
            chunk = [s for s in chunk if s not in gone]
        now = self._clock()
        ordered = [blobs[s] for s in chunk]
        vectors = Vectors.decode(ordered)
        by_model: dict[str, tuple[ScoringModel, list[int]]] = {}
        for i, row in enumerate(vectors.strings):
            model = select_model(models, row[AREA])
            by_model.setdefault(model.digest, (model, []))[1].append(i)
        scored: list[tuple[ScoringModel, str] | None] = [None] * len(chunk)
        for model, positions in by_model.values():
            part = Vectors(vectors.numbers[positions], [vectors.strings[i] for i in positions])
            for i, value in zip(positions, model.scores_of(part), strict=True):
                scored[i] = (model, value)
        out: dict[str, _Scored] = {}
        for i, subject in enumerate(chunk):
            result = scored[i]
            assert result is not None
            model, value = result
            key_id, aead = keys[subject]
            values: dict[str, object] = {SCORE_FIELD: f"{value} {model.version} {model.digest}"}
            if subject in derived:
                values[FEATURES_FIELD] = ordered[i]
            head = vectors.strings[i][HEAD]
            event = ScoreEvent(
                subject=subject,
                model_version=model.version,
                model_digest=model.digest,
                inputs_digest=self._derive.mac(_INPUTS_LABEL, ordered[i]).hex(),
                scored_at_ns=now,
                head_tag=self._derive.subject_tag(head) if head else None,
            )
            out[subject] = _Scored(encrypt_record(aead, key_id, subject, values), event,
                                   sources[subject])  # fmt: skip
        return out

    def _vector_rows(self, conn: Connection, chunk: Sequence[str]) -> SubjectRows:
        """The stored feature vectors of ``chunk`` and their records' data keys, in one
        statement that reads neither the subjects' table nor vault_fields: a vector exists
        only on a household record that is not erased (the scoring writes it on household
        records only; erasure deletes it with the keys, in one transaction, and one statement
        sees one snapshot). A subject without one is not in the rows; :meth:`_derive_vectors` reads
        it in full (and so tells an erased, unknown or other record)."""
        keys: dict[str, dict[int, bytes]] = {}
        fields: dict[str, bytes] = {}
        for subject, version, wrapped, ciphertext in conn.execute(
            t.own_field_query(FEATURES_FIELD, lambda column: among(conn, column, chunk))
        ):
            keys.setdefault(subject, {})[version] = bytes(wrapped)
            fields[subject] = ciphertext if type(ciphertext) is bytes else bytes(ciphertext)
        present = tuple(s for s in chunk if s in fields)
        return SubjectRows(
            present,
            dict.fromkeys(present),
            keys,
            [(s, FEATURES_FIELD, fields[s]) for s in present],
        )

    def _derive_vectors(
        self,
        conn: Connection,
        chunk: Sequence[str],
        blobs: dict[str, bytes],
        sources: dict[str, bytes],
        keys: dict[str, tuple[int, Aead]],
        *,
        gone: set[str] | None = None,
    ) -> set[str]:
        """The feature vectors of households that have none (never scored, or their
        declaration rewritten since), derived from their declaration into ``blobs``; returns
        those households; ``keys`` receives their current data keys."""
        if not chunk:
            return set()
        raw: dict[tuple[str, str], bytes] = {}
        # The declaration's UTF-8 as decrypted: parsed as it is, never decoded into a str.
        plain, current = read_households(
            self._records, conn, chunk, ("declaration",), raw=raw, decode=False, gone=gone
        )
        keys.update(current)
        derived: set[str] = set()
        for subject in chunk:
            if gone and subject in gone:
                continue
            typed = plain[subject].get("declaration")
            if not isinstance(typed, bytes) or typed[:1] != _TEXT:
                raise InvalidRecord("household record has no declaration")
            blobs[subject] = feature_vector(parse_declaration(typed[1:]))
            sources[subject] = _FROM_DECLARATION + raw[(subject, "declaration")][:_NONCE_END]
            derived.add(subject)
        return derived
