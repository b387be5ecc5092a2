"""The social register's tables in the main store: households and their membership.

Per household: an opaque id, the vault subject of its record, the sector of the office that
holds it, the version of the model that last scored it, and timestamps; per member: IDCS →
household; per change: its kind, when, by which office and officer, the member counts before
and after. Everything declared is in the vault.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, String, Table

__all__ = ["household_events", "households", "memberships", "metadata"]

metadata = MetaData()
_TS = DateTime(timezone=True)
households = Table(
    "rsu_households", metadata,
    Column("household_id", String(32), primary_key=True),
    Column("vault_subject", String(64), nullable=False, unique=True),
    # The sector of the office that registered the household: only that sector's offices may
    # change it (None: registered by the operator in bulk, any RSU office may).
    Column("sector", String(32)),
    Column("model_version", String(64)),
    Column("scored_at", _TS),
    Column("created_at", _TS, nullable=False),
    Column("updated_at", _TS, nullable=False),
    # Registration order: the national rescoring's batches (rows lie together in that order).
    Index("ix_rsu_households_created", "created_at", "household_id"),
)  # fmt: skip
memberships = Table(
    "rsu_members", metadata,
    # The primary key is the rule "each person in at most one household at a time".
    Column("idcs", String(10), primary_key=True),
    Column("household_id", String(32), nullable=False, index=True),
    Column("joined_at", _TS, nullable=False),
)  # fmt: skip
household_events = Table(
    "rsu_household_events", metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    Column("household_id", String(32), nullable=False),
    # registered, member_added, member_removed, split (members left), split_from (a household
    # formed by members who left another), declared, dissolved.
    Column("kind", String(16), nullable=False),
    Column("reason", String(16)),  # birth, death, departure, marriage, ... (a code, not text)
    # The register's own reference of the member who joined or left (the IDCS, as
    # rsu_members holds it); never a name or a declared value.
    Column("member_idcs", String(10)),
    Column("related_household", String(32)),  # the other household of a split
    Column("size_before", Integer, nullable=False),
    Column("size_after", Integer, nullable=False),
    Column("office", String(64)),  # the office's OAuth client id
    Column("officer", String(64)),  # the officer signed in at that office, if any
    Column("at", _TS, nullable=False),
    Index("ix_rsu_household_events_household", "household_id", "event_id"),
)  # fmt: skip
