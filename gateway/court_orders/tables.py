"""The court-order table, in the main store (migration court_orders_0001). Times are integer
nanoseconds since the epoch; fields and purposes JSON arrays. No column holds an IDCS."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, MetaData, String, Table, Text

metadata = MetaData()

court_orders = Table(
    "court_orders",
    metadata,
    Column("reference", String(64), primary_key=True),
    Column("court", String(200), nullable=False),
    Column("issued_at_ns", BigInteger, nullable=False),
    Column("office", String(64), nullable=False),
    Column("officer", String(200), nullable=False),
    Column("client_id", String(64), nullable=False, index=True),
    # The person's keyed audit tag (what the policy compares), and the client's pseudonym for
    # them when the order was entered (what it learns, translated to the current key).
    Column("subject", String(128), nullable=False),
    Column("pseudonym", String(200), nullable=False),
    Column("fields", Text, nullable=False),
    Column("purposes", Text, nullable=False),
    Column("valid_until_ns", BigInteger, nullable=False),
    Column("embargo_until_ns", BigInteger, nullable=False),
    Column("entered_at_ns", BigInteger, nullable=False),
    Column("audit_index", BigInteger, nullable=False),
    Column("revoked_at_ns", BigInteger, nullable=True),
    Column("revoked_by", String(200), nullable=True),
    Column("revocation_audit_index", BigInteger, nullable=True),
)
