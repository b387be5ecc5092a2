"""main store: the audit signer's memory of the latest checkpoint it signed

Kept outside the audit store on purpose (audit.memory): the signer refuses to sign a tree that
the audit store cannot prove consistent with this checkpoint, so whoever rewrites the audit
database cannot make the gateway vouch for the rewrite.

Revision ID: audit_signer_0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "audit_signer_0001"
down_revision = None
branch_labels = ("audit_signer",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_signer_state",
        sa.Column("origin", sa.String(200), primary_key=True),
        sa.Column("tree_size", sa.BigInteger, nullable=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_signer_state")
