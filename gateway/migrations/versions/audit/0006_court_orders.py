"""audit store: the court order of an entry, as a column auditors filter on

A law-enforcement query is made under a court order; its entry names the order's reference
and the end of its embargo. ``court_order`` repeats the reference beside the canonical bytes,
as ``official`` repeats an acting official's id, so that the CNDP can list every access made
under one order by index. Other rows hold NULL; the entries, and so every leaf hash, are
unchanged. A nullable column is added in place (no table rebuild), so the append-only triggers
stay.

Revision ID: audit_0006
Revises: audit_0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "audit_0006"
down_revision = "audit_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_entries", sa.Column("court_order", sa.String(64), nullable=True))
    op.create_index("ix_audit_entries_court_order", "audit_entries", ["court_order", "idx"])


def downgrade() -> None:
    op.drop_index("ix_audit_entries_court_order", table_name="audit_entries")
    op.drop_column("audit_entries", "court_order")
