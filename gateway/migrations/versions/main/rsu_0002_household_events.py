"""RSU household changes: the sector holding each household, and the history of changes.

Each change an office makes (a member added or removed, a split, a new declaration) is one
row: its kind and reason code, when, by which office and officer, the member counts before
and after, and the member concerned by the register's own reference (the IDCS, as
rsu_members holds it). No declared value and no name: those stay in the vault.

Revision ID: rsu_0002
Revises: rsu_0001
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "rsu_0002"
down_revision = "rsu_0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Households registered before this revision were registered by the operator: no sector.
    op.add_column("rsu_households", sa.Column("sector", sa.String(32), nullable=True))
    op.create_table(
        "rsu_household_events",
        sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("household_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(16), nullable=True),
        sa.Column("member_idcs", sa.String(10), nullable=True),
        sa.Column("related_household", sa.String(32), nullable=True),
        sa.Column("size_before", sa.Integer, nullable=False),
        sa.Column("size_after", sa.Integer, nullable=False),
        sa.Column("office", sa.String(64), nullable=True),
        sa.Column("officer", sa.String(64), nullable=True),
        sa.Column("at", TS, nullable=False),
    )
    # A household's history, in order: the citizen's and the office's one read.
    op.create_index(
        "ix_rsu_household_events_household", "rsu_household_events", ["household_id", "event_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_rsu_household_events_household", table_name="rsu_household_events")
    op.drop_table("rsu_household_events")
    with op.batch_alter_table("rsu_households") as batch:
        batch.drop_column("sector")
