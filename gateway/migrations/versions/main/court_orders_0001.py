"""The register of court orders under which law-enforcement authorities query the registers.

Revision ID: court_orders_0001
Revises:
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "court_orders_0001"
down_revision = None
branch_labels = ("court_orders",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "court_orders",
        sa.Column("reference", sa.String(64), primary_key=True),
        sa.Column("court", sa.String(200), nullable=False),
        sa.Column("issued_at_ns", sa.BigInteger, nullable=False),
        sa.Column("office", sa.String(64), nullable=False),
        sa.Column("officer", sa.String(200), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("pseudonym", sa.String(200), nullable=False),
        sa.Column("fields", sa.Text, nullable=False),
        sa.Column("purposes", sa.Text, nullable=False),
        sa.Column("valid_until_ns", sa.BigInteger, nullable=False),
        sa.Column("embargo_until_ns", sa.BigInteger, nullable=False),
        sa.Column("entered_at_ns", sa.BigInteger, nullable=False),
        sa.Column("audit_index", sa.BigInteger, nullable=False),
        sa.Column("revoked_at_ns", sa.BigInteger, nullable=True),
        sa.Column("revoked_by", sa.String(200), nullable=True),
        sa.Column("revocation_audit_index", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_court_orders_client_id", "court_orders", ["client_id"])


def downgrade() -> None:
    op.drop_index("ix_court_orders_client_id", table_name="court_orders")
    op.drop_table("court_orders")
