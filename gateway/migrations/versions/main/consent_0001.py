"""Consents, objections and the notification outbox.

Revision ID: consent_0001
Revises:
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "consent_0001"
down_revision = None
branch_labels = ("consent",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consents",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("subject", sa.String(64), nullable=False, index=True),
        sa.Column("recipient", sa.String(64), nullable=False),
        sa.Column("sector", sa.String(32), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("registry_entry", sa.String(64), nullable=False),
        sa.Column("fields", sa.Text, nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("granted_at_ns", sa.BigInteger, nullable=False),
        sa.Column("expires_at_ns", sa.BigInteger, nullable=False),
        # An artefact is replaced at most once: the unique key makes two concurrent
        # revocations of one consent impossible.
        sa.Column("replaces", sa.String(36), nullable=True, unique=True),
        sa.Column("receipt", sa.Text, nullable=False),
    )
    op.create_table(
        "objections",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("subject", sa.String(64), nullable=False, index=True),
        sa.Column("purpose", sa.String(64), nullable=True),
        sa.Column("sector", sa.String(32), nullable=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("created_at_ns", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "consent_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("recipient", sa.String(64), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_ns", sa.BigInteger, nullable=False),
        sa.Column("delivered_at_ns", sa.BigInteger, nullable=True),
        sa.Column("last_status", sa.Integer, nullable=True),
    )
    op.create_index("consent_outbox_due", "consent_outbox", ["delivered_at_ns", "next_attempt_ns"])


def downgrade() -> None:
    op.drop_table("consent_outbox")
    op.drop_table("objections")
    op.drop_table("consents")
