"""The breach register: breaches, the steps taken on each, the persons notified.

Revision ID: breaches_0001
Revises:
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "breaches_0001"
down_revision = None
branch_labels = ("breaches",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "breaches",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("occurred_at_ns", sa.BigInteger, nullable=True),
        sa.Column("detected_at_ns", sa.BigInteger, nullable=False),
        sa.Column("registered_at_ns", sa.BigInteger, nullable=False),
        sa.Column("person_categories", sa.Text, nullable=False),
        sa.Column("persons_affected", sa.BigInteger, nullable=False),
        sa.Column("record_categories", sa.Text, nullable=False),
        sa.Column("records_affected", sa.BigInteger, nullable=False),
        sa.Column("likely_consequences", sa.Text, nullable=False),
        sa.Column("measures", sa.Text, nullable=False),
        sa.Column("risk", sa.String(16), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cndp_deadline_ns", sa.BigInteger, nullable=False),
        sa.Column("cndp_notified_at_ns", sa.BigInteger, nullable=True),
        sa.Column("cndp_notification", sa.Text, nullable=True),
        sa.Column("delay_reason", sa.Text, nullable=True),
        sa.Column("persons_notified", sa.BigInteger, nullable=False),
        sa.Column("closed_at_ns", sa.BigInteger, nullable=True),
        sa.Column("closure_summary", sa.Text, nullable=True),
    )
    op.create_index("ix_breaches_status", "breaches", ["status"])
    op.create_index("ix_breaches_cndp_deadline_ns", "breaches", ["cndp_deadline_ns"])
    op.create_table(
        "breach_steps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("breach_id", sa.String(36), sa.ForeignKey("breaches.id"), nullable=False),
        sa.Column("step", sa.String(24), nullable=False),
        sa.Column("at_ns", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("audit_index", sa.BigInteger, nullable=False),
        sa.Column("decision_id", sa.String(64), nullable=False),
    )
    op.create_index("ix_breach_steps_breach_id", "breach_steps", ["breach_id"])
    op.create_table(
        "breach_notices",
        sa.Column("breach_id", sa.String(36), sa.ForeignKey("breaches.id"), nullable=False),
        sa.Column("recipient", sa.String(64), nullable=False),
        sa.Column("notified_at_ns", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("breach_id", "recipient"),
    )


def downgrade() -> None:
    op.drop_table("breach_notices")
    op.drop_index("ix_breach_steps_breach_id", table_name="breach_steps")
    op.drop_table("breach_steps")
    op.drop_index("ix_breaches_cndp_deadline_ns", table_name="breaches")
    op.drop_index("ix_breaches_status", table_name="breaches")
    op.drop_table("breaches")
