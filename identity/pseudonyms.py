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

Rotation: :meth:`SectorPseudonyms.rotate` makes a new version current for new lookups; older
versions keep resolving until :meth:`SectorPseudonyms.retire` deletes their index entries.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime

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

__all__ = ["SectorPseudonym", "SectorPseudonyms", "UnknownPseudonym", "format_pseudonym"]

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
LIVE_PSEUDONYM = (
    pseudonyms.c.pseudonym == bindparam("pseudonym"),
    pseudonyms.c.sector == bindparam("sector"),
    pseudonym_keys.c.state != "retired",
)


class UnknownPseudonym(LookupError):
    """Not a pseudonym of the caller's sector (unknown, retired, or another sector's)."""

    def __init__(self) -> None:
        super().__init__("unknown pseudonym")


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

    def rotate(self, sector: str) -> int:
        """Start a new key version for ``sector``; the previous one stays resolvable."""
        current = self.current_version(sector)
        with self._engine.begin() as conn:
            newest = conn.execute(
                select(func.max(pseudonym_keys.c.version)).where(pseudonym_keys.c.sector == sector)
            ).scalar_one()
            conn.execute(
                update(pseudonym_keys)
                .where(pseudonym_keys.c.sector == sector, pseudonym_keys.c.version == current)
                .values(state="active")
            )
            conn.execute(
                insert(pseudonym_keys).values(
                    sector=sector,
                    version=int(newest) + 1,
                    state="current",
                    created_at=datetime.now(UTC),
                )
            )
        return int(newest) + 1

    def retire(self, sector: str, version: int) -> int:
        """Stop resolving ``version`` and drop its index entries; returns how many went."""
        if version == self.current_version(sector):
            raise ValueError("rotate before retiring the current version")
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
