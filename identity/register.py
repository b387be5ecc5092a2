"""The National Population Register (RNP, Law 72.18): enrolment, deduplication, rectification,
status.

What this store keeps per person: the IDCS, the vault subject id of the current record, a status
(active / deceased / erased), timestamps and three keyed blind indexes (CNIE number; Arabic and
Latin name + birth date + birth place) computed by the vault. Every name, date and number is in
the vault, under an opaque random subject id that is *not* the IDCS (so a vault dump and a
register dump join only through this table).

Writing to two stores is a small saga: the vault subjects of a batch are first listed in
``rnp_pending_vault`` (committed), then the vault records are written, then the register rows
are inserted and the pending entries deleted in one transaction. A crash in between leaves
pending entries, whose vault records :meth:`Register.sweep_pending` erases; never a register row
without its record, nor a record nobody can find.

Rectification (Law 09.08 art. 8, right of rectification) writes the corrected record under a
*new* vault subject and keeps the previous subject in ``rnp_person_versions`` until
``retain_until`` (the retention rule, ``version_retention_days``); :meth:`Register.purge_versions`
then crypto-shreds it. Each version having its own data key is what makes that purge an
erasure rather than a promise. Callers resolve the current subject through
:meth:`Register.vault_subject` at the time of use and must not cache it across rectifications.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from sqlalchemy import (
    Connection,
    Engine,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy import exc as sa_exc

from identity.idcs import Idcs, random_idcs
from identity.person import PersonIn
from identity.tables import (
    import_jobs,
    import_rejects,
    pending_vault,
    person_versions,
    persons,
    pseudonyms,
)
from storekit.bulk import among, bound, chunks, insert_rows
from vault.errors import UnknownSubject

__all__ = [
    "DuplicatePerson",
    "PersonErased",
    "PersonStatus",
    "Register",
    "RegisterError",
    "RegisterVault",
    "StaleVersion",
    "UnknownPerson",
    "draw_unique",
]

PersonStatus = Literal["active", "deceased", "erased"]

_INDEX_COLUMNS = ("cnie_index", "name_birth_ar_index", "name_birth_lat_index")


class RegisterVault(Protocol):
    """The part of :class:`vault.Vault` the register uses (structural, so tests and the
    composition root pass the real vault)."""

    def store_many(self, records: Iterable[tuple[str, str, Mapping[str, object]]]) -> int: ...
    def erase(self, subject: str) -> None: ...
    def blind_index(self, kind: str, value: str) -> str: ...
    def mac(self, label: str, value: bytes) -> bytes: ...


class RegisterError(Exception):
    """Base of the register's errors; messages never carry an IDCS or personal data."""


class DuplicatePerson(RegisterError):
    """This person is already enrolled (Law 72.18 art. 8: one IDCS per person).

    Deliberately says nothing about *which* record matched or its IDCS: an officer who could
    learn an existing IDCS by re-typing someone's name and birth date would have an oracle.
    """

    def __init__(self) -> None:
        super().__init__("a person with the same identifying data is already enrolled")


class UnknownPerson(RegisterError):
    def __init__(self) -> None:
        super().__init__("no person with this IDCS")


class PersonErased(RegisterError):
    def __init__(self) -> None:
        super().__init__("this person's data has been erased")


class StaleVersion(RegisterError):
    def __init__(self) -> None:
        super().__init__("the record changed meanwhile; read it again and retry")


def _now() -> datetime:
    return datetime.now(UTC)


def _subject() -> str:
    # 128 random bits: the vault subject links to nothing outside this table.
    return "p_" + secrets.token_hex(16)


def _batch_subjects(count: int) -> list[str]:
    """``count`` vault subjects for one enrolment batch, in ascending order.

    128 random bits each, of which the first 64 are shared by the batch: its rows then land
    next to each other in every index keyed by subject (vault and register) instead of on a
    random page each, which is most of the writing cost of a large register. The shared half
    links the subjects of one batch, which the vault already records as one ``created_at_ns``.
    """
    prefix = "p_" + secrets.token_hex(8)
    chosen: set[str] = set()
    while len(chosen) < count:
        chosen.add(prefix + secrets.token_hex(8))
    return sorted(chosen)


def draw_unique(count: int, taken: Callable[[Sequence[str]], set[str]]) -> list[Idcs]:
    """``count`` distinct fresh IDCS none of which ``taken`` reports as already issued.

    ``taken`` receives candidates and returns those already in use (the register passes a
    lookup in ``rnp_persons``). The unique key still decides under concurrency; this keeps the
    retry path for bulk enrolment rare and cheap.
    """
    chosen: dict[str, None] = {}
    while len(chosen) < count:
        wanted = count - len(chosen)
        candidates = {random_idcs() for _ in range(wanted)} - chosen.keys()
        used = taken(sorted(candidates)) if candidates else set()
        for c in candidates - used:
            chosen[c] = None
    return [Idcs.trusted(c) for c in chosen]


@dataclass(frozen=True)
class _Indexes:
    cnie: str | None
    name_birth_ar: str
    name_birth_lat: str

    def values(self) -> tuple[str | None, str, str]:
        return (self.cnie, self.name_birth_ar, self.name_birth_lat)

    def row(self) -> dict[str, str | None]:
        return dict(zip(_INDEX_COLUMNS, self.values(), strict=True))


class Register:
    """The RNP over the main store; personal data goes to ``vault``, never to this database."""

    def __init__(
        self,
        engine: Engine,
        vault: RegisterVault,
        *,
        version_retention_days: int = 3650,
        idcs_source: Callable[[], str] = random_idcs,
    ) -> None:
        self._engine = engine
        self._vault = vault
        self._retention = timedelta(days=version_retention_days)
        self._idcs_source = idcs_source

    # -- enrolment ---------------------------------------------------------------------------
    def enrol(self, person: PersonIn) -> Idcs:
        """Enrol one person and return their new IDCS; :class:`DuplicatePerson` if enrolled."""
        (result,) = self.enrol_many([person])
        if result is None:
            raise DuplicatePerson()
        return result

    def enrol_many(
        self,
        people: Sequence[PersonIn],
        *,
        job_id: str | None = None,
        in_transaction: Callable[[Connection, list[Idcs | None]], None] | None = None,
    ) -> list[Idcs | None]:
        """Enrol a batch in one register transaction; ``None`` marks a duplicate (of an enrolled
        person or of an earlier entry of the same batch).

        ``in_transaction(conn, results)`` runs inside the committing transaction, so a caller's
        bookkeeping (the importer's "last committed line") commits atomically with the rows.
        """
        indexes = [self._indexes(p) for p in people]
        results: list[Idcs | None] = [None] * len(people)
        for _attempt in range(5):
            fresh = self._fresh(indexes)
            ids = self._draw(len(fresh))
            subjects = _batch_subjects(len(fresh))
            self._mark_pending(subjects, job_id)
            try:
                self._vault.store_many(
                    (s, "person", people[i].vault_fields())
                    for s, i in zip(subjects, fresh, strict=True)
                )
                results = [None] * len(people)
                for idcs, i in zip(ids, fresh, strict=True):
                    results[i] = idcs
                with self._engine.begin() as conn:
                    if subjects:
                        now = bound(conn, persons.c.created_at, _now())
                        # In the order of persons' columns.
                        insert_rows(conn, persons, [
                            (idcs, s, "active", 1, *indexes[i].values(), now, now)
                            for idcs, s, i in zip(ids, subjects, fresh, strict=True)
                        ])  # fmt: skip
                        self._unmark_pending(conn, subjects)
                    if in_transaction is not None:
                        in_transaction(conn, results)
                return results
            except sa_exc.IntegrityError:
                # A concurrent enrolment took one of these indexes or IDCS between our check
                # and our insert; the unique keys refused it. Undo and re-check the batch.
                self._discard(subjects)
            except BaseException:
                # Best effort: if the store is down this fails too, and the pending entries
                # stay for sweep_pending(); the original error is the one to report.
                with suppress(Exception):
                    self._discard(subjects)
                raise
        raise RegisterError("enrolment kept conflicting with concurrent writers; retry")

    def _indexes(self, person: PersonIn) -> _Indexes:
        ar, lat = person.name_birth_keys()
        return _Indexes(
            cnie=self._vault.blind_index("cnie", person.cnie) if person.cnie else None,
            name_birth_ar=self._vault.blind_index("name_birth", ar),
            name_birth_lat=self._vault.blind_index("name_birth", lat),
        )

    def _fresh(self, indexes: Sequence[_Indexes], *, exclude: str | None = None) -> list[int]:
        """Positions of the entries that duplicate neither an enrolled person nor an earlier
        entry of the batch."""
        existing: set[str] = set()
        with self._engine.connect() as conn:
            for column in _INDEX_COLUMNS:
                col = persons.c[column]
                values = sorted({v for ix in indexes for v in [ix.row()[column]] if v})
                for chunk in chunks(values):
                    query = select(col).where(among(conn, col, chunk))
                    if exclude is not None:
                        query = query.where(persons.c.idcs != exclude)
                    existing.update(r[0] for r in conn.execute(query))
        seen: set[str] = set()
        fresh = []
        for i, ix in enumerate(indexes):
            keys = {v for v in ix.values() if v}
            if keys & existing or keys & seen:
                continue
            seen |= keys
            fresh.append(i)
        return fresh

    def _draw(self, count: int) -> list[Idcs]:
        def taken(candidates: Sequence[str]) -> set[str]:
            with self._engine.connect() as conn:
                return {
                    r[0]
                    for chunk in chunks(candidates)
                    for r in conn.execute(
                        select(persons.c.idcs).where(among(conn, persons.c.idcs, chunk))
                    )
                }

        if self._idcs_source is random_idcs:
            return draw_unique(count, taken)
        # An injected source (tests of the retry path): one candidate at a time.
        out: list[Idcs] = []
        while len(out) < count:
            candidate = self._idcs_source()
            if candidate not in out and not taken([candidate]):
                out.append(Idcs(candidate))
        return out

    def _mark_pending(self, subjects: Sequence[str], job_id: str | None) -> None:
        if not subjects:
            return
        with self._engine.begin() as conn:
            now = bound(conn, pending_vault.c.created_at, _now())
            insert_rows(conn, pending_vault, [(s, job_id, now) for s in subjects])

    @staticmethod
    def _unmark_pending(conn: Connection, subjects: Sequence[str]) -> None:
        for chunk in chunks(subjects):
            conn.execute(
                delete(pending_vault).where(among(conn, pending_vault.c.vault_subject, chunk))
            )

    def _discard(self, subjects: Sequence[str]) -> None:
        """Erase vault records that no register row references, then forget them."""
        for s in subjects:
            self._erase_quietly(s)
        with self._engine.begin() as conn:
            self._unmark_pending(conn, subjects)

    def _erase_quietly(self, subject: str) -> None:
        # UnknownSubject: never written (the crash came before the vault write).
        with suppress(UnknownSubject):
            self._vault.erase(subject)

    def sweep_pending(
        self,
        *,
        job_id: str | None = None,
        older_than_s: float = 0.0,
        now: datetime | None = None,
        dry_run: bool = False,
    ) -> int:
        """Erase vault records left by interrupted enrolments (of ``job_id``, or any older than
        ``older_than_s`` seconds before ``now`` when ``job_id`` is None); returns how many were
        swept (``dry_run``: would be)."""
        with self._engine.connect() as conn:
            query = select(pending_vault.c.vault_subject)
            if job_id is not None:
                query = query.where(pending_vault.c.job_id == job_id)
            else:
                cutoff = (now or _now()) - timedelta(seconds=older_than_s)
                query = query.where(pending_vault.c.created_at <= cutoff)
            subjects = [r[0] for r in conn.execute(query)]
        if not dry_run:
            self._discard(subjects)
        return len(subjects)

    # -- reading -----------------------------------------------------------------------------
    def _row(self, conn: Connection, idcs: str) -> Mapping[str, Any]:
        row = conn.execute(select(persons).where(persons.c.idcs == idcs)).mappings().first()
        if row is None:
            raise UnknownPerson()
        return dict(row)

    def status(self, idcs: str) -> PersonStatus:
        with self._engine.connect() as conn:
            status: PersonStatus = self._row(conn, idcs)["status"]
            return status

    def vault_subject(self, idcs: str) -> str:
        """The vault subject of the person's *current* record (changes on rectification)."""
        with self._engine.connect() as conn:
            row = self._row(conn, idcs)
        if row["status"] == "erased":
            raise PersonErased()
        return str(row["vault_subject"])

    def find_by_cnie(self, cnie: str) -> Idcs | None:
        """The IDCS of the active or deceased person holding this CNIE number, if any (for
        the agency lookup; the caller turns it into a sector pseudonym, never returns it)."""
        index = self._vault.blind_index("cnie", cnie)
        with self._engine.connect() as conn:
            found = conn.execute(
                select(persons.c.idcs).where(persons.c.cnie_index == index)
            ).scalar_one_or_none()
        return Idcs(found) if found is not None else None

    def stand_in(self, cnie: str) -> str:
        """A keyed, IDCS-shaped stand-in for a CNIE number nobody holds: the subject an
        unknown lookup asks about, so that it does the work a known person's does (consents
        read, policy asked, tag derived) and its timing does not tell who is registered. The
        same number always gets the same stand-in; it is no one's IDCS (it is never enrolled,
        and a collision only reads a consent list nothing is done with)."""
        digest = self._vault.mac("lookup-stand-in", cnie.encode())
        return f"{int.from_bytes(digest[:8], 'big') % 10**10:010d}"

    def count(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(persons)).scalar_one())

    # -- rectification -----------------------------------------------------------------------
    def rectify(self, idcs: str, corrected: PersonIn) -> int:
        """Replace the person's record with ``corrected``; return the new version number.

        The whole corrected record is required: the blind indexes cover several fields, and
        this room never reads personal data back to merge a partial change (the gateway merges
        a PATCH with what the officer was shown). The previous record stays in the vault under
        its own subject until its retention date (:meth:`purge_versions`).
        """
        with self._engine.connect() as conn:
            row = self._row(conn, idcs)
        if row["status"] == "erased":
            raise PersonErased()
        indexes = self._indexes(corrected)
        if not self._fresh([indexes], exclude=idcs):
            raise DuplicatePerson()
        subject = _subject()
        self._mark_pending([subject], None)
        now = _now()
        try:
            self._vault.store_many([(subject, "person", corrected.vault_fields())])
            with self._engine.begin() as conn:
                changed = conn.execute(
                    update(persons)
                    .where(persons.c.idcs == idcs, persons.c.version == row["version"],
                           persons.c.status != "erased")
                    .values(vault_subject=subject, version=persons.c.version + 1,
                            updated_at=now, **indexes.row())
                ).rowcount  # fmt: skip
                if changed != 1:
                    raise StaleVersion()
                conn.execute(
                    insert(person_versions).values(
                        idcs=idcs, version=row["version"], vault_subject=row["vault_subject"],
                        superseded_at=now, retain_until=now + self._retention,
                    )
                )  # fmt: skip
                self._unmark_pending(conn, [subject])
        except sa_exc.IntegrityError:
            self._discard([subject])
            raise DuplicatePerson() from None
        except BaseException:
            with suppress(Exception):
                self._discard([subject])
            raise
        return int(row["version"]) + 1

    def previous_versions(self, idcs: str) -> list[tuple[int, datetime]]:
        """(version, retain_until) of the kept previous records, oldest first."""
        with self._engine.connect() as conn:
            self._row(conn, idcs)
            rows = conn.execute(
                select(person_versions.c.version, person_versions.c.retain_until)
                .where(person_versions.c.idcs == idcs)
                .order_by(person_versions.c.version)
            )
            return [(int(r[0]), r[1]) for r in rows]

    def purge_versions(self, now: datetime | None = None, *, dry_run: bool = False) -> int:
        """Crypto-shred previous records past their retention date; returns how many
        (``dry_run``: would)."""
        cutoff = now or _now()
        with self._engine.connect() as conn:
            due = conn.execute(
                select(
                    person_versions.c.idcs,
                    person_versions.c.version,
                    person_versions.c.vault_subject,
                ).where(person_versions.c.retain_until <= cutoff)
            ).all()
        if dry_run:
            return len(due)
        for idcs, version, subject in due:
            self._erase_quietly(subject)
            with self._engine.begin() as conn:
                conn.execute(
                    delete(person_versions).where(
                        person_versions.c.idcs == idcs, person_versions.c.version == version
                    )
                )
        return len(due)

    def deceased_before(self, cutoff: datetime) -> list[str]:
        """The IDCS of persons whose death was recorded at or before ``cutoff`` (the status
        change's time), not yet erased: the register's retention after a death (Law 72.18)."""
        with self._engine.connect() as conn:
            return list(
                conn.execute(
                    select(persons.c.idcs)
                    .where(persons.c.status == "deceased", persons.c.updated_at <= cutoff)
                    .order_by(persons.c.updated_at)
                ).scalars()
            )

    def purge_import_rejects(self, cutoff: datetime, *, dry_run: bool = False) -> int:
        """Delete (or count) the reject lines of bulk imports finished at or before
        ``cutoff``; the job's own record (its counts) stays."""
        done = select(import_jobs.c.job_id).where(import_jobs.c.finished_at <= cutoff)
        due = import_rejects.c.job_id.in_(done)
        with self._engine.begin() as conn:
            if dry_run:
                return int(
                    conn.execute(
                        select(func.count()).select_from(import_rejects).where(due)
                    ).scalar_one()
                )
            return int(conn.execute(delete(import_rejects).where(due)).rowcount)

    # -- status ------------------------------------------------------------------------------
    def set_status(self, idcs: str, status: PersonStatus) -> None:
        """Record a death, correct one, or erase the person (crypto-shredding every version).

        Erasure is final: the IDCS stays as a tombstone (never reissued, art. 8), the blind
        indexes and sector pseudonyms are deleted so nothing links to the person any more.
        """
        if status not in ("active", "deceased", "erased"):
            raise ValueError("status must be active, deceased or erased")
        with self._engine.connect() as conn:
            row = self._row(conn, idcs)
            old = conn.execute(
                select(person_versions.c.vault_subject).where(person_versions.c.idcs == idcs)
            ).all()
        if row["status"] == "erased":
            if status == "erased":
                return
            raise PersonErased()
        now = _now()
        if status != "erased":
            with self._engine.begin() as conn:
                conn.execute(
                    update(persons).where(persons.c.idcs == idcs)
                    .values(status=status, updated_at=now)
                )  # fmt: skip
            return
        # Shred first: if we stop half-way, the register still says "active" and a retry
        # finishes the job; the reverse order could claim an erasure that did not happen.
        for subject in [str(row["vault_subject"]), *(str(r[0]) for r in old)]:
            self._erase_quietly(subject)
        with self._engine.begin() as conn:
            conn.execute(delete(pseudonyms).where(pseudonyms.c.idcs == idcs))
            conn.execute(delete(person_versions).where(person_versions.c.idcs == idcs))
            conn.execute(
                update(persons).where(persons.c.idcs == idcs)
                .values(status="erased", updated_at=now, cnie_index=None,
                        name_birth_ar_index=None, name_birth_lat_index=None)
            )  # fmt: skip
