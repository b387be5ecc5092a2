"""The social register's tables in the main store: households and their membership.

Per household: an opaque id, the vault subject of its record, the version of the model that
last scored it, and timestamps; per member: IDCS → household. Everything declared is in the
vault.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, MetaData, String, Table

__all__ = ["households", "memberships", "metadata"]

metadata = MetaData()
_TS = DateTime(timezone=True)
households = Table(
    "rsu_households", metadata,
    Column("household_id", String(32), primary_key=True),
    Column("vault_subject", String(64), nullable=False, unique=True),
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
