"""audit store: the acting official of an entry, as a column auditors filter on

An agency call made under token exchange (RFC 8693) names, in the entry's actor, the
official's pseudonymous id at the agency and the case reference. ``official`` repeats the id
beside the canonical bytes, as ``actor_id`` repeats the agency's, so that the CNDP can list one
official's accesses across citizens by index rather than by reading the whole log. Older rows
hold NULL (their entries name no official); the entries themselves, and so every leaf hash,
are unchanged. A nullable column is added in place (no table rebuild), so the append-only
triggers stay.

Revision ID: audit_0004
Revises: audit_0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "audit_0004"
down_revision = "audit_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_entries", sa.Column("official", sa.String(64), nullable=True))
    op.create_index("ix_audit_entries_official", "audit_entries", ["official", "idx"])


def downgrade() -> None:
    op.drop_index("ix_audit_entries_official", table_name="audit_entries")
    op.drop_column("audit_entries", "official")
