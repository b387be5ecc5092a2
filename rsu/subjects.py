"""From an agency's sector pseudonym to the records a request concerns, in one read: the one
resolution of a pseudonym.

An agency call names a person by its sector pseudonym; the gateway needs the IDCS (for the
person's consents and objections), the vault subject of the person's current record, and that
of their household, if they are in the RSU. Those live in four tables of the main store, two
of identity's and two of this room's (the lowest room that sees both); this joins them in one
indexed statement on the hot-path runner (``storekit``) instead of three lookups through
three services.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select

from identity.idcs import Idcs
from identity.pseudonyms import LIVE_PSEUDONYM, LIVE_PSEUDONYMS, UnknownPseudonym, live_params
from identity.register import PersonErased
from identity.tables import persons, pseudonyms
from rsu.tables import households, memberships
from storekit import hot_sql

__all__ = ["Subjects", "resolve_subjects"]

_RESOLVE = (
    select(persons.c.idcs, persons.c.vault_subject, persons.c.status, households.c.vault_subject)
    .select_from(
        LIVE_PSEUDONYMS.join(persons, persons.c.idcs == pseudonyms.c.idcs)
        .outerjoin(memberships, memberships.c.idcs == persons.c.idcs)
        .outerjoin(households, households.c.household_id == memberships.c.household_id)
    )
    .where(*LIVE_PSEUDONYM)
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
    row = hot_sql(engine).one(_RESOLVE, **live_params(sector, pseudonym))
    if row is None:
        raise UnknownPseudonym()
    idcs, person, status, household = row
    if status == "erased":
        raise PersonErased()
    return Subjects(Idcs(idcs), str(person), None if household is None else str(household))
