"""audit store: the subject index keyed by log segment first

The index behind a citizen's access log was (subject, idx). Subjects are keyed hashes, spread
evenly over the key space, so every appended entry landed on an index page of its own: a batch
of 5,000 entries dirtied some 4,500 pages (each written to the WAL at commit and copied again at
the checkpoint), and more as the log grows. It cost a national rescoring more than any other
single step of storing a household.

The index is now (idx / 65536, subject, idx): entries are grouped in segments of 65,536
consecutive indexes, and an append touches only the pages of the current segment (a few
hundred). A subject's entries are found by one index search a segment, newest segments first
(audit.storage.SqlStorage.find); a citizen's latest page is usually one statement.

Building the index reads the whole log once (about 2 s a million entries on SQLite on a
2-core machine), and appends wait for it: run the upgrade in a maintenance window on a large
log. The downgrade restores the (subject, idx) index. Both are derived from the entries: nothing
else changes, and the append-only triggers are untouched.

Revision ID: audit_0002
Revises: audit_0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "audit_0002"
down_revision = "audit_0001"
branch_labels = None
depends_on = None

# audit.storage.SUBJECT_SEGMENT: queries must spell the expression the same way for the planner
# to match it (a test reads it back from the database).
SEGMENT = 65536


def upgrade() -> None:
    op.create_index(
        "ix_audit_entries_subject_segment",
        "audit_entries",
        [sa.text(f"(idx / {SEGMENT})"), "subject", "idx"],
    )
    op.drop_index("ix_audit_entries_subject", table_name="audit_entries")


def downgrade() -> None:
    op.create_index("ix_audit_entries_subject", "audit_entries", ["subject", "idx"])
    op.drop_index("ix_audit_entries_subject_segment", table_name="audit_entries")
