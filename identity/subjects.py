"""From an agency's sector pseudonym to the records a request concerns, in one read.

An agency call names a person by its sector pseudonym; the gateway needs the IDCS (for the
person's consents and objections), the vault subject of the person's current record, and that
of their household, if they are in the RSU. Those live in four tables of the main store; this
joins them in one indexed statement on the hot-path runner (``storekit``) instead of three
lookups through three services.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, bindparam, select

from identity.idcs import Idcs
from identity.pseudonyms import SectorPseudonym, UnknownPseudonym, _check_sector, keys, pseudonyms
from identity.register import PersonErased, persons
from identity.rsu import households, memberships
from storekit import hot_sql

__all__ = ["Subjects", "resolve_subjects"]

_RESOLVE = (
    select(persons.c.idcs, persons.c.vault_subject, persons.c.status, households.c.vault_subject)
    .select_from(
        pseudonyms.join(
            keys,
            (keys.c.sector == pseudonyms.c.sector) & (keys.c.version == pseudonyms.c.key_version),
        )
        .join(persons, persons.c.idcs == pseudonyms.c.idcs)
        .outerjoin(memberships, memberships.c.idcs == persons.c.idcs)
        .outerjoin(households, households.c.household_id == memberships.c.household_id)
    )
    # Scoped by the caller's sector in SQL: another sector's entry is never even read, so
    # the answer (and its timing) cannot depend on it.
    .where(
        pseudonyms.c.pseudonym == bindparam("pseudonym"),
        pseudonyms.c.sector == bindparam("sector"),
        keys.c.state != "retired",
    )
)


@dataclass(frozen=True)
class Subjects:
    """The person a pseudonym stands for: IDCS, current vault record, household's record."""

    idcs: Idcs
    person: str
    household: str | None


def resolve_subjects(engine: Engine, sector: str, pseudonym: str) -> Subjects:
    """The records behind ``pseudonym`` within ``sector``.

    Raises :class:`UnknownPseudonym` for anything that is not a live pseudonym of this
    sector (malformed, unknown, retired, another sector's: one answer for all), and
    :class:`PersonErased` when the person's data has been erased.
    """
    _check_sector(sector)
    try:
        parsed = SectorPseudonym(pseudonym)
    except UnknownPseudonym:
        raise UnknownPseudonym() from None
    row = hot_sql(engine).one(_RESOLVE, pseudonym=str(parsed), sector=sector)
    if row is None:
        raise UnknownPseudonym()
    idcs, person, status, household = row
    if status == "erased":
        raise PersonErased()
    return Subjects(Idcs(idcs), str(person), None if household is None else str(household))
