"""Where each agency receives consent-status notifications.

Revision ID: consent_0002
Revises: consent_0001
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "consent_0002"
down_revision = "consent_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consent_endpoints",
        sa.Column("recipient", sa.String(64), primary_key=True),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("updated_at_ns", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("consent_endpoints")
