"""Tables of the consent room, in the main store. Consent rows are inserted, never updated: an
artefact's current status is derived from the artefacts that replace it. A review is updated
once, when an officer decides it."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Text

metadata = MetaData()

consents = Table(
    "consents",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("subject", String(64), nullable=False, index=True),
    Column("recipient", String(64), nullable=False),
    Column("sector", String(32), nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("registry_entry", String(64), nullable=False),
    Column("fields", Text, nullable=False),
    Column("status", String(8), nullable=False),
    Column("method", String(16), nullable=False),
    Column("granted_at_ns", BigInteger, nullable=False),
    Column("expires_at_ns", BigInteger, nullable=False),
    Column("replaces", String(36), nullable=True, unique=True),
    Column("receipt", Text, nullable=False),
)

objections = Table(
    "objections",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("subject", String(64), nullable=False, index=True),
    Column("purpose", String(64), nullable=True),
    Column("sector", String(32), nullable=True),
    Column("reason", String(32), nullable=False),
    Column("created_at_ns", BigInteger, nullable=False),
)

# A human review of an automated result (Law 09.08 art. 11) as the office's desk handles it:
# the request (an objection row of reason ``automated_decision``, same id), the household it
# concerns, the deadline and, once decided, the outcome, the officer and the vault record of
# the reason (personal data, kept there). One update: pending to decided.
reviews = Table(
    "reviews",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("subject", String(64), nullable=False, index=True),
    Column("household_id", String(32), nullable=False),
    Column("created_at_ns", BigInteger, nullable=False),
    Column("due_at_ns", BigInteger, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("decided_at_ns", BigInteger, nullable=True),
    Column("decided_by", String(128), nullable=True),
    Column("reason_subject", String(64), nullable=True),
)

outbox = Table(
    "consent_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recipient", String(64), nullable=False),
    Column("event", String(16), nullable=False),
    Column("body", Text, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_ns", BigInteger, nullable=False),
    Column("delivered_at_ns", BigInteger, nullable=True),
    Column("last_status", Integer, nullable=True),
)

endpoints = Table(
    "consent_endpoints",
    metadata,
    Column("recipient", String(64), primary_key=True),
    Column("url", String(2000), nullable=False),
    Column("updated_at_ns", BigInteger, nullable=False),
)

# A citizen's choice to be told of the uses of their record (docs/privacy.md "Notifications").
# Keyed by the person's audit tag, the keyed hash their audit entries carry, so the delivery
# job matches entries to choices without an IDCS; the address itself is in the vault, under
# ``contact_subject``, a record of its own.
notification_preferences = Table(
    "notification_preferences",
    metadata,
    Column("subject", String(64), primary_key=True),
    Column("contact_subject", String(64), nullable=False, unique=True),
    Column("channel", String(8), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("language", String(2), nullable=False),
    Column("created_at_ns", BigInteger, nullable=False),
    Column("updated_at_ns", BigInteger, nullable=False),
)

# How far the delivery job has read the audit log: the index of the last entry it turned into
# notices, moved in the same transaction as the notices it queued.
notification_cursor = Table(
    "notification_cursor",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated_at_ns", BigInteger, nullable=False),
)
