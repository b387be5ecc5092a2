"""The history of a household: one row per change an office made, in the main store.

What a row keeps is what the CNDP and the household need to follow a change (Law 09.08 art. 7:
the person is told of the processing of their data; Law 72.18: the RSU is kept up to date as
life changes the household): its kind, a reason code, when, which office and officer, the
member counts before and after, and the member concerned by the register's own reference. The
declaration itself, names and ages stay in the vault.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import Connection, insert, select

from rsu.tables import household_events

__all__ = [
    "ADD_REASONS",
    "REMOVE_REASONS",
    "AddReason",
    "ChangedBy",
    "EventKind",
    "HouseholdEvent",
    "RemoveReason",
    "events_of",
    "record_event",
]

EventKind = Literal[
    "registered", "member_added", "member_removed", "split", "split_from", "declared", "dissolved"
]
# Why someone joins or leaves a household (codes, so that no free text reaches the main store).
AddReason = Literal["birth", "marriage", "adoption", "return", "other"]
RemoveReason = Literal["death", "departure", "marriage", "divorce", "other"]
ADD_REASONS: tuple[str, ...] = get_args(AddReason)
REMOVE_REASONS: tuple[str, ...] = get_args(RemoveReason)


@dataclass(frozen=True)
class ChangedBy:
    """Who made a change: the office (its OAuth client id and sector) and, when one signed in,
    the officer. The sector decides which households the office may change."""

    office: str
    sector: str | None = None
    officer: str | None = None


@dataclass(frozen=True)
class HouseholdEvent:
    event_id: int
    household_id: str
    kind: EventKind
    reason: str | None
    member_idcs: str | None
    related_household: str | None
    size_before: int
    size_after: int
    office: str | None
    officer: str | None
    at: datetime


def record_event(
    conn: Connection,
    household_id: str,
    kind: EventKind,
    *,
    at: datetime,
    size_before: int,
    size_after: int,
    by: ChangedBy | None,
    reason: str | None = None,
    member_idcs: str | None = None,
    related_household: str | None = None,
) -> None:
    """Append one change to a household's history, in the caller's transaction (the change
    and its record commit together, or neither does)."""
    conn.execute(
        insert(household_events),
        {
            "household_id": household_id,
            "kind": kind,
            "reason": reason,
            "member_idcs": member_idcs,
            "related_household": related_household,
            "size_before": size_before,
            "size_after": size_after,
            "office": by.office if by else None,
            "officer": by.officer if by else None,
            "at": at,
        },
    )


def events_of(conn: Connection, household_id: str) -> Sequence[HouseholdEvent]:
    """A household's changes, oldest first."""
    rows = conn.execute(
        select(household_events)
        .where(household_events.c.household_id == household_id)
        .order_by(household_events.c.event_id)
    )
    return [
        HouseholdEvent(
            event_id=int(r.event_id),
            household_id=r.household_id,
            kind=r.kind,
            reason=r.reason,
            member_idcs=r.member_idcs,
            related_household=r.related_household,
            size_before=int(r.size_before),
            size_after=int(r.size_after),
            office=r.office,
            officer=r.officer,
            at=r.at,
        )
        for r in rows
    ]
