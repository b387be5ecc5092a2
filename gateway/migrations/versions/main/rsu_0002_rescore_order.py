"""RSU national rescoring in registration order.

Batches were ranges of household ids, which are random: a batch's rows lay all over the
households and vault tables, one page each. Households are now taken in the order they were
registered (``created_at``, then id), which is the order their rows were written in every
table, so a batch's rows lie together. The index serves the planning scan and each batch's
read; a batch records its bounds in that order. Batches planned before keep their household-id
ranges (the new columns are null for them).

Revision ID: rsu_0002
Revises: rsu_0001
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "rsu_0002"
down_revision = "rsu_0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_index("ix_rsu_households_created", "rsu_households", ["created_at", "household_id"])
    op.add_column("rsu_rescore_batches", sa.Column("first_created_at", TS, nullable=True))
    op.add_column("rsu_rescore_batches", sa.Column("last_created_at", TS, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rsu_rescore_batches") as batch:
        batch.drop_column("last_created_at")
        batch.drop_column("first_created_at")
    op.drop_index("ix_rsu_households_created", table_name="rsu_households")
