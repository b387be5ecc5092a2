"""vault store: households' scores in a table of their own

A national rescoring rewrites every household's score. As a row of vault_fields, among the
record's other fields (about 2 KiB a household), each rewrite dirties a page of its own. In
vault_scores, one small row a household in the order households were first scored, a batch's
scores share a few pages (docs/performance.md, bench/scoring.py). On PostgreSQL the table keeps
half of each page free, so that a rewritten score stays in its page.

The rows move as they are: the ciphertexts are bound to (subject, "score"), not to a table.

Revision ID: vault_0003
Revises: vault_0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "vault_0003"
down_revision = "vault_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vault_scores",
        sa.Column("subject", sa.String(128), primary_key=True),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        # Half of each page left free: a rescoring's new row version then fits in the page of
        # the old one (a HOT update: no new index entry), and the next one's pruning frees the
        # dead version without a VACUUM.
        op.execute("ALTER TABLE vault_scores SET (fillfactor = 50)")
    op.execute(
        "INSERT INTO vault_scores (subject, ciphertext) "
        "SELECT subject, ciphertext FROM vault_fields WHERE field = 'score'"
    )
    op.execute("DELETE FROM vault_fields WHERE field = 'score'")


def downgrade() -> None:
    op.execute(
        "INSERT INTO vault_fields (subject, field, ciphertext) "
        "SELECT subject, 'score', ciphertext FROM vault_scores"
    )
    op.drop_table("vault_scores")
