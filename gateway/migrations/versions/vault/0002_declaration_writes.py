"""vault store: a counter of declaration rewrites

A national rescoring scores households in one process and stores the scores in another; the
store must know whether a declaration was rewritten in between. Every rewrite of a declaration
of an existing record (an amendment, a record stored again, an erasure) increments this
counter in its own transaction, so one read of it tells the store that nothing changed,
instead of one lookup per household.

Revision ID: vault_0002
Revises: vault_0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "vault_0002"
down_revision = "vault_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    counters = op.create_table(
        "vault_counters",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(counters, [{"name": "declaration_writes", "value": 0}])


def downgrade() -> None:
    op.drop_table("vault_counters")
