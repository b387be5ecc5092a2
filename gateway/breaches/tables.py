"""Tables of the breach register, in the main store.

Times are integer nanoseconds since the epoch, as in the other rooms. Categories are JSON
arrays of short labels. No column holds an IDCS: a person notified is their keyed tag.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

metadata = MetaData()

breaches = Table(
    "breaches",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("occurred_at_ns", BigInteger, nullable=True),
    Column("detected_at_ns", BigInteger, nullable=False),
    Column("registered_at_ns", BigInteger, nullable=False),
    Column("person_categories", Text, nullable=False),
    Column("persons_affected", BigInteger, nullable=False),
    Column("record_categories", Text, nullable=False),
    Column("records_affected", BigInteger, nullable=False),
    Column("likely_consequences", Text, nullable=False),
    Column("measures", Text, nullable=False),
    Column("risk", String(16), nullable=True),
    Column("status", String(16), nullable=False, index=True),
    # detected_at + 72 h, stored so that "overdue" is one indexed comparison.
    Column("cndp_deadline_ns", BigInteger, nullable=False, index=True),
    Column("cndp_notified_at_ns", BigInteger, nullable=True),
    Column("cndp_notification", Text, nullable=True),
    Column("delay_reason", Text, nullable=True),
    Column("persons_notified", BigInteger, nullable=False),
    Column("closed_at_ns", BigInteger, nullable=True),
    Column("closure_summary", Text, nullable=True),
)

breach_steps = Table(
    "breach_steps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("breach_id", String(36), ForeignKey("breaches.id"), nullable=False, index=True),
    Column("step", String(24), nullable=False),
    Column("at_ns", BigInteger, nullable=False),
    # The audit log's actor id (client/officer) and the entry that recorded the decision.
    Column("actor", String(200), nullable=False),
    Column("audit_index", BigInteger, nullable=False),
    Column("decision_id", String(64), nullable=False),
)

breach_notices = Table(
    "breach_notices",
    metadata,
    Column("breach_id", String(36), ForeignKey("breaches.id"), nullable=False),
    Column("recipient", String(64), nullable=False),
    Column("notified_at_ns", BigInteger, nullable=False),
    PrimaryKeyConstraint("breach_id", "recipient"),
)
