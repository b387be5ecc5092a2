"""Sector pseudonyms: what an agency sees instead of the IDCS (CNDP deliberation, 2020).

``pseudonym = HMAC-SHA-256(k[sector, version], IDCS)``, computed inside the vault
(``vault.mac("pseudonym:<sector>:v<version>", idcs)``; the key never leaves it), and written as

    <sector>.v<version>.<base32 of the 32-byte MAC, lower case, no padding>

e.g. ``health.v1.mfrggzdf...`` (52 base32 characters). The prefix lets the gateway pick the key
version without trying each; the MAC makes pseudonyms of two sectors unlinkable without the
vault's keys. An index table maps each pseudonym back to its IDCS for the gateway.

Resolution is scoped to the caller's sector: a pseudonym of another sector, of a retired key
version, or that was never issued, all raise the same :class:`UnknownPseudonym` (an agency must
not learn that a string it holds is a valid pseudonym elsewhere: no oracle).

Rotation (Law 09.08 art. 23: keys are renewed, so that a leaked one stops linking anything):
:meth:`SectorPseudonyms.rotate` makes a new version current for new lookups and gives the one
it supersedes a transition period. During it the old version keeps resolving, and the sector's
agencies translate the pseudonyms they hold to the current version
(:meth:`SectorPseudonyms.translate`); :meth:`SectorPseudonyms.retire` then deletes the old
version's index entries (refused before the transition's end unless forced), after which its
pseudonyms are unknown.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy import exc as sa_exc

from identity.idcs import Idcs
from identity.register import RegisterVault, UnknownPerson
from identity.tables import persons, pseudonym_keys, pseudonyms

__all__ = [
    "KeyVersion",
    "SectorPseudonym",
    "SectorPseudonyms",
    "TransitionNotOver",
    "UnknownPseudonym",
    "format_pseudonym",
]
# The most pseudonyms one translation takes (the agency API's bound on a batch).
MAX_TRANSLATE = 1000

_SECTOR = re.compile(r"\A[a-z][a-z0-9_]{0,31}\Z")
_PSEUDONYM = re.compile(r"\A([a-z][a-z0-9_]{0,31})\.v([1-9][0-9]{0,5})\.([a-z2-7]{52})\Z")


# A live pseudonym of the caller's sector, with bind parameters "pseudonym" and "sector"
# (live_params). Scoped by the sector in SQL: another sector's entry is never even read, so
# the answer (and its timing) cannot depend on it. rsu.subjects joins the person's and the
# household's records onto this lookup: the one resolution of a pseudonym.
LIVE_PSEUDONYMS = pseudonyms.join(
    pseudonym_keys,
    (pseudonym_keys.c.sector == pseudonyms.c.sector)
    & (pseudonym_keys.c.version == pseudonyms.c.key_version),
)
# The sector's condition alone, for a lookup of several pseudonyms at once (rsu.resolve_many).
LIVE_IN_SECTOR = (
    pseudonyms.c.sector == bindparam("sector"),
    pseudonym_keys.c.state != "retired",
)
LIVE_PSEUDONYM = (pseudonyms.c.pseudonym == bindparam("pseudonym"), *LIVE_IN_SECTOR)


class UnknownPseudonym(LookupError):
    """Not a pseudonym of the caller's sector (unknown, retired, or another sector's)."""

    def __init__(self) -> None:
        super().__init__("unknown pseudonym")


class TransitionNotOver(ValueError):
    """A superseded key version's transition has not ended: its agencies may still hold
    pseudonyms of it they have not translated."""

    def __init__(self, ends_at: datetime) -> None:
        super().__init__(f"the transition of this version ends at {ends_at.isoformat()}")
        self.ends_at = ends_at


@dataclass(frozen=True)
class KeyVersion:
    """One key version of a sector, as ``sijill pseudonyms status`` lists it."""

    sector: str
    version: int
    state: str  # current, active (superseded, still resolving) or retired
    created_at: datetime
    transition_ends_at: datetime | None
    retired_at: datetime | None
    pseudonyms: int  # index entries still held under this version


class SectorPseudonym(str):
    """A pseudonym string with its sector and key version parsed from the prefix."""

    __slots__ = ()

    def __new__(cls, value: str) -> SectorPseudonym:
        if not isinstance(value, str) or not _PSEUDONYM.match(value):
            raise UnknownPseudonym()
        return super().__new__(cls, value)

    @property
    def sector(self) -> str:
        return self.split(".", 1)[0]

    @property
    def version(self) -> int:
        return int(self.split(".", 2)[1][1:])


def _check_sector(sector: str) -> str:
    if not isinstance(sector, str) or not _SECTOR.match(sector):
        raise ValueError("a sector is 1-32 characters of [a-z0-9_], starting with a letter")
    return sector


def live_params(sector: str, pseudonym: str) -> dict[str, str]:
    """The parameters of :data:`LIVE_PSEUDONYM`: ValueError for a malformed sector (the
    caller's own), :class:`UnknownPseudonym` for anything that is not a pseudonym."""
    _check_sector(sector)
    try:
        parsed = SectorPseudonym(pseudonym)
    except UnknownPseudonym:
        raise UnknownPseudonym() from None
    return {"pseudonym": str(parsed), "sector": sector}


def format_pseudonym(sector: str, version: int, mac: bytes) -> SectorPseudonym:
    """The textual form of a sector pseudonym (RFC 4648 base32, lower case, unpadded)."""
    body = base64.b32encode(mac).decode("ascii").rstrip("=").lower()
    return SectorPseudonym(f"{_check_sector(sector)}.v{version}.{body}")


class SectorPseudonyms:
    """Issue, rotate and retire per-sector pseudonyms of enrolled persons (resolution:
    :func:`rsu.resolve_subjects`)."""

    def __init__(self, engine: Engine, vault: RegisterVault) -> None:
        self._engine = engine
        self._vault = vault

    def _compute(self, idcs: str, sector: str, version: int) -> SectorPseudonym:
        mac = self._vault.mac(f"pseudonym:{sector}:v{version}", idcs.encode("ascii"))
        return format_pseudonym(sector, version, mac)

    def current_version(self, sector: str) -> int:
        """The key version new lookups use (version 1 is created on first use)."""
        _check_sector(sector)
        with self._engine.connect() as conn:
            version = self._current(conn, sector)
        if version is not None:
            return version
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(pseudonym_keys).values(sector=sector, version=1, state="current",
                                        created_at=datetime.now(UTC))
                )  # fmt: skip
        except sa_exc.IntegrityError:
            pass  # a concurrent first use created it
        with self._engine.connect() as conn:
            version = self._current(conn, sector)
        assert version is not None
        return version

    @staticmethod
    def _current(conn: Connection, sector: str) -> int | None:
        found = conn.execute(
            select(pseudonym_keys.c.version).where(
                pseudonym_keys.c.sector == sector, pseudonym_keys.c.state == "current"
            )
        ).scalar_one_or_none()
        return int(found) if found is not None else None

    def pseudonym_for(self, idcs: str, sector: str) -> SectorPseudonym:
        """This sector's pseudonym for the person (the same on every call for one key version).

        Erased persons have none (:class:`identity.UnknownPerson`)."""
        version = self.current_version(sector)
        value = self._compute(Idcs(idcs), sector, version)
        with self._engine.connect() as conn:
            status = conn.execute(
                select(persons.c.status).where(persons.c.idcs == idcs)
            ).scalar_one_or_none()
            if status is None or status == "erased":
                raise UnknownPerson()
            known = conn.execute(
                select(pseudonyms.c.pseudonym).where(pseudonyms.c.pseudonym == value)
            ).first()
        if known is None:
            try:
                with self._engine.begin() as conn:
                    conn.execute(
                        insert(pseudonyms).values(pseudonym=value, sector=sector,
                                                  key_version=version, idcs=idcs,
                                                  created_at=datetime.now(UTC))
                    )  # fmt: skip
            except sa_exc.IntegrityError:
                pass  # the same (deterministic) pseudonym was indexed concurrently
        return value

    def rotate(self, sector: str, transition_days: int = 0, *, now: datetime | None = None) -> int:
        """Start a new key version for ``sector``; the previous one keeps resolving, and may
        not be retired (unforced) for ``transition_days``. Returns the new version."""
        if transition_days < 0:
            raise ValueError("a transition lasts zero or more days")
        current = self.current_version(sector)
        moment = now or datetime.now(UTC)
        with self._engine.begin() as conn:
            newest = conn.execute(
                select(func.max(pseudonym_keys.c.version)).where(pseudonym_keys.c.sector == sector)
            ).scalar_one()
            conn.execute(
                update(pseudonym_keys)
                .where(pseudonym_keys.c.sector == sector, pseudonym_keys.c.version == current)
                .values(state="active", transition_ends_at=moment + timedelta(days=transition_days))
            )
            conn.execute(
                insert(pseudonym_keys).values(
                    sector=sector,
                    version=int(newest) + 1,
                    state="current",
                    created_at=moment,
                )
            )
        return int(newest) + 1

    def retire(
        self, sector: str, version: int, *, force: bool = False, now: datetime | None = None
    ) -> int:
        """Stop resolving ``version`` and drop its index entries; returns how many went.
        Refused (:class:`TransitionNotOver`) before its transition ends unless ``force``."""
        if version == self.current_version(sector):
            raise ValueError("rotate before retiring the current version")
        with self._engine.connect() as conn:
            row = conn.execute(
                select(pseudonym_keys.c.state, pseudonym_keys.c.transition_ends_at).where(
                    pseudonym_keys.c.sector == sector, pseudonym_keys.c.version == version
                )
            ).first()
        if row is None:
            raise ValueError(f"sector {sector} has no key version {version}")
        ends = _aware(row.transition_ends_at) if row.transition_ends_at is not None else None
        if ends is not None and not force and (now or datetime.now(UTC)) < ends:
            raise TransitionNotOver(ends)
        with self._engine.begin() as conn:
            conn.execute(
                update(pseudonym_keys)
                .where(pseudonym_keys.c.sector == sector, pseudonym_keys.c.version == version)
                .values(state="retired", retired_at=datetime.now(UTC))
            )
            return int(
                conn.execute(
                    delete(pseudonyms).where(
                        pseudonyms.c.sector == sector, pseudonyms.c.key_version == version
                    )
                ).rowcount
            )

    def status(self, sector: str | None = None) -> list[KeyVersion]:
        """Every key version (of ``sector``, or of all), with its state, transition and how
        many pseudonyms it still indexes."""
        held = (
            select(
                pseudonyms.c.sector,
                pseudonyms.c.key_version,
                func.count().label("n"),
            )
            .group_by(pseudonyms.c.sector, pseudonyms.c.key_version)
            .subquery()
        )
        query = (
            select(pseudonym_keys, func.coalesce(held.c.n, 0).label("held"))
            .select_from(
                pseudonym_keys.outerjoin(
                    held,
                    (held.c.sector == pseudonym_keys.c.sector)
                    & (held.c.key_version == pseudonym_keys.c.version),
                )
            )
            .order_by(pseudonym_keys.c.sector, pseudonym_keys.c.version)
        )
        if sector is not None:
            query = query.where(pseudonym_keys.c.sector == _check_sector(sector))
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            KeyVersion(
                sector=r.sector,
                version=int(r.version),
                state=r.state,
                created_at=_aware(r.created_at),
                transition_ends_at=_aware(r.transition_ends_at) if r.transition_ends_at else None,
                retired_at=_aware(r.retired_at) if r.retired_at else None,
                pseudonyms=int(r.held),
            )
            for r in rows
        ]

    def translate(self, sector: str, presented: Sequence[str]) -> dict[str, SectorPseudonym | None]:
        """Each presented pseudonym → the person's pseudonym under ``sector``'s current key,
        or None. Only a pseudonym the index holds for ``sector`` under a live version (one
        issued to this sector, so one its agencies already hold) is translated: another
        sector's, a retired version's, an invented or an erased person's is None, all alike
        (no oracle). The current pseudonyms are indexed, as a lookup would."""
        _check_sector(sector)
        if len(presented) > MAX_TRANSLATE:
            raise ValueError(f"at most {MAX_TRANSLATE} pseudonyms a translation")
        wanted = sorted({p for p in presented if isinstance(p, str) and _PSEUDONYM.match(p)})
        found: dict[str, str] = {}
        if wanted:
            with self._engine.connect() as conn:
                rows = conn.execute(
                    select(pseudonyms.c.pseudonym, pseudonyms.c.idcs)
                    .select_from(LIVE_PSEUDONYMS.join(persons, persons.c.idcs == pseudonyms.c.idcs))
                    .where(
                        pseudonyms.c.pseudonym.in_(wanted),
                        *LIVE_IN_SECTOR,
                        persons.c.status != "erased",
                    ),
                    {"sector": sector},
                ).all()
            found = {r.pseudonym: r.idcs for r in rows}
        version = self.current_version(sector) if found else 0
        current = {idcs: self._compute(idcs, sector, version) for idcs in set(found.values())}
        self._index(sector, version, current)
        return {p: current[found[p]] if p in found else None for p in presented}

    def _index(self, sector: str, version: int, current: dict[str, SectorPseudonym]) -> None:
        """Index the current pseudonyms not indexed yet (a concurrent lookup may add one)."""
        if not current:
            return
        with self._engine.connect() as conn:
            known = set(
                conn.execute(
                    select(pseudonyms.c.pseudonym).where(
                        pseudonyms.c.pseudonym.in_([str(p) for p in current.values()])
                    )
                ).scalars()
            )
        now = datetime.now(UTC)
        rows = [
            {"pseudonym": str(value), "sector": sector, "key_version": version, "idcs": idcs,
             "created_at": now}
            for idcs, value in current.items()
            if str(value) not in known
        ]  # fmt: skip
        if not rows:
            return
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(pseudonyms), rows)
        except sa_exc.IntegrityError:
            # A concurrent lookup indexed one of them (the same deterministic value): one by one.
            for row in rows:
                try:
                    with self._engine.begin() as conn:
                        conn.execute(insert(pseudonyms), [row])
                except sa_exc.IntegrityError:
                    pass

    def sectors_of(self, idcs: str) -> list[HeldPseudonym]:
        """The sectors that hold a pseudonym of the person (one per key version still
        resolvable), oldest first: what the right of access names, never the values."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(
                    pseudonyms.c.sector,
                    pseudonyms.c.key_version,
                    func.min(pseudonyms.c.created_at).label("since"),
                )
                .where(pseudonyms.c.idcs == idcs)
                .group_by(pseudonyms.c.sector, pseudonyms.c.key_version)
                .order_by("since", pseudonyms.c.sector)
            ).all()
        return [HeldPseudonym(r.sector, int(r.key_version), _aware(r.since)) for r in rows]


@dataclass(frozen=True)
class HeldPseudonym:
    """A sector holding a pseudonym of a person, under one key version, since ``since``."""

    sector: str
    key_version: int
    since: datetime


def _aware(moment: datetime) -> datetime:
    # SQLite gives back naive datetimes; the column holds UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
