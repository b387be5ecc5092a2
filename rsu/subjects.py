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

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, Select, select

from identity.idcs import Idcs
from identity.pseudonyms import (
    LIVE_IN_SECTOR,
    LIVE_PSEUDONYM,
    LIVE_PSEUDONYMS,
    UnknownPseudonym,
    live_params,
)
from identity.register import PersonErased
from identity.tables import persons, pseudonyms
from rsu.tables import households, memberships
from storekit import HotSQL, hot_sql

__all__ = ["Subjects", "resolve_many", "resolve_subjects"]

_RECORDS = (
    LIVE_PSEUDONYMS.join(persons, persons.c.idcs == pseudonyms.c.idcs)
    .outerjoin(memberships, memberships.c.idcs == persons.c.idcs)
    .outerjoin(households, households.c.household_id == memberships.c.household_id)
)
_RESOLVE = (
    select(persons.c.idcs, persons.c.vault_subject, persons.c.status, households.c.vault_subject)
    .select_from(_RECORDS)
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
    return _subjects(idcs, person, household)


def _subjects(idcs: str, person: str, household: str | None) -> Subjects:
    return Subjects(Idcs(idcs), str(person), None if household is None else str(household))


def resolve_many(
    engine: Engine, sector: str, presented: Sequence[str]
) -> dict[str, Subjects | None]:
    """:func:`resolve_subjects` of each presented pseudonym, in one statement whatever their
    number (a batch's): its :class:`Subjects`, or None wherever :func:`resolve_subjects` would
    raise (malformed, unknown, retired, another sector's, erased: one answer for all)."""
    found: dict[str, Subjects | None] = dict.fromkeys(presented)
    wanted = []
    for pseudonym in found:
        try:
            wanted.append(live_params(sector, pseudonym)["pseudonym"])
        except UnknownPseudonym:
            continue
    if not wanted:
        return found
    hot = hot_sql(engine)
    rows = hot.all(_resolve_among(hot), pseudonyms=hot.listed(wanted), sector=sector)
    for pseudonym, idcs, person, status, household in rows:
        # The first row, as resolve_subjects takes it.
        if found[pseudonym] is None and status != "erased":
            found[pseudonym] = _subjects(idcs, person, household)
    return found


def _resolve_among(hot: HotSQL) -> Select[tuple[str, str, str, str, str | None]]:
    """:data:`_RESOLVE` for a list of pseudonyms (one statement a dialect)."""
    statement = _AMONG.get(hot.sqlite)
    if statement is None:
        statement = _AMONG[hot.sqlite] = (
            select(pseudonyms.c.pseudonym, *_RESOLVE.selected_columns)
            .select_from(_RECORDS)
            .where(hot.among(pseudonyms.c.pseudonym, "pseudonyms"), *LIVE_IN_SECTOR)
        )
    return statement


_AMONG: dict[bool, Select[tuple[str, str, str, str, str | None]]] = {}
