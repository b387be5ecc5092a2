"""Tables of the erasure procedure, in the main store.

Times are integer nanoseconds since the epoch, as in the other rooms. A request names the
person by IDCS: the register keeps the IDCS as a tombstone after the erasure (never reissued,
Law 72.18 art. 8), and the request is the record of why it went. ``open_idcs`` holds the IDCS
while the request is open and NULL afterwards: its unique key is the rule "one open request a
person" on SQLite and PostgreSQL alike (both allow many NULLs).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

metadata = MetaData()

erasure_requests = Table(
    "erasure_requests",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("idcs", String(10), nullable=False, index=True),
    Column("open_idcs", String(10), nullable=True, unique=True),
    Column("ground", String(32), nullable=False),
    Column("reference", String(200), nullable=False),
    Column("statement", Text, nullable=True),
    Column("status", String(24), nullable=False, index=True),
    # The audit log's actor id (client/officer, or the system) and the officer alone ("" for
    # a machine client or the system), against whom the approver is checked (four eyes).
    Column("requested_by", String(200), nullable=False),
    Column("requester_officer", String(64), nullable=False),
    Column("requested_at_ns", BigInteger, nullable=False),
    Column("request_audit_index", BigInteger, nullable=True),
    Column("decided_by", String(200), nullable=True),
    Column("decided_at_ns", BigInteger, nullable=True),
    Column("decision_audit_index", BigInteger, nullable=True),
    Column("refusal_reason", Text, nullable=True),
    Column("carried_out_at_ns", BigInteger, nullable=True),
)

# Each step of a carry-out done, with the audit entry that recorded it: a carry-out that
# stopped half-way resumes after the last step written here.
erasure_steps = Table(
    "erasure_steps",
    metadata,
    Column("request_id", String(36), ForeignKey("erasure_requests.id"), nullable=False),
    Column("step", String(24), nullable=False),
    Column("done_at_ns", BigInteger, nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("audit_index", BigInteger, nullable=False),
    PrimaryKeyConstraint("request_id", "step"),
)
