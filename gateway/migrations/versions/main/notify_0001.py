"""Citizens' notification choices and the delivery job's place in the audit log.

Revision ID: notify_0001
Revises:
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "notify_0001"
down_revision = None
branch_labels = ("notify",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notification_preferences",
        sa.Column("subject", sa.String(64), primary_key=True),
        sa.Column("contact_subject", sa.String(64), nullable=False, unique=True),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("created_at_ns", sa.BigInteger, nullable=False),
        sa.Column("updated_at_ns", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "notification_cursor",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("updated_at_ns", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notification_cursor")
    op.drop_table("notification_preferences")
