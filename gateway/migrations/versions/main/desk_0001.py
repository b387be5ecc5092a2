"""The office's desks: reviews of automated results (Law 09.08 art. 11) and citizens'
rectification requests (art. 8).

Revision ID: desk_0001
Revises:
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "desk_0001"
down_revision = None
branch_labels = ("desk",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("subject", sa.String(64), nullable=False, index=True),
        sa.Column("household_id", sa.String(32), nullable=False),
        sa.Column("created_at_ns", sa.BigInteger, nullable=False),
        sa.Column("due_at_ns", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("decided_at_ns", sa.BigInteger, nullable=True),
        sa.Column("decided_by", sa.String(128), nullable=True),
        sa.Column("reason_subject", sa.String(64), nullable=True),
    )
    op.create_table(
        "rnp_rectification_requests",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("idcs", sa.String(10), nullable=False, index=True),
        sa.Column("vault_subject", sa.String(64), nullable=False, unique=True),
        sa.Column("fields", sa.String(400), nullable=False),
        sa.Column("status", sa.String(10), nullable=False, index=True),
        sa.Column("created_at_ns", sa.BigInteger, nullable=False),
        sa.Column("due_at_ns", sa.BigInteger, nullable=False),
        sa.Column("decided_at_ns", sa.BigInteger, nullable=True),
        sa.Column("decided_by", sa.String(128), nullable=True),
        sa.Column("version", sa.Integer, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("rnp_rectification_requests")
    op.drop_table("reviews")
