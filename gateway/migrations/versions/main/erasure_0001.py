"""The erasure procedure: requests (ground, reference, who asked, who decided) and the steps
of each carry-out done.

Revision ID: erasure_0001
Revises:
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "erasure_0001"
down_revision = None
branch_labels = ("erasure",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erasure_requests",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("idcs", sa.String(10), nullable=False),
        sa.Column("open_idcs", sa.String(10), nullable=True, unique=True),
        sa.Column("ground", sa.String(32), nullable=False),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("statement", sa.Text, nullable=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("requester_officer", sa.String(64), nullable=False),
        sa.Column("requested_at_ns", sa.BigInteger, nullable=False),
        sa.Column("request_audit_index", sa.BigInteger, nullable=True),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("decided_at_ns", sa.BigInteger, nullable=True),
        sa.Column("decision_audit_index", sa.BigInteger, nullable=True),
        sa.Column("refusal_reason", sa.Text, nullable=True),
        sa.Column("carried_out_at_ns", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_erasure_requests_idcs", "erasure_requests", ["idcs"])
    op.create_index("ix_erasure_requests_status", "erasure_requests", ["status"])
    op.create_table(
        "erasure_steps",
        sa.Column(
            "request_id", sa.String(36), sa.ForeignKey("erasure_requests.id"), nullable=False
        ),
        sa.Column("step", sa.String(24), nullable=False),
        sa.Column("done_at_ns", sa.BigInteger, nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("audit_index", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("request_id", "step"),
    )


def downgrade() -> None:
    op.drop_table("erasure_steps")
    op.drop_index("ix_erasure_requests_status", table_name="erasure_requests")
    op.drop_index("ix_erasure_requests_idcs", table_name="erasure_requests")
    op.drop_table("erasure_requests")
