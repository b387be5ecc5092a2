"""RSU social register: households, memberships, and national rescoring jobs.

No column holds personal data in clear: the declaration, the members' relations, the area and
region and the score are in the vault (kind "household"); this store keeps opaque ids, the
membership (IDCS -> household) and the version of the model that last scored each household.

Revision ID: rsu_0001
Revises:
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "rsu_0001"
down_revision = None
branch_labels = ("rsu",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "rsu_households",
        sa.Column("household_id", sa.String(32), primary_key=True),
        sa.Column("vault_subject", sa.String(64), nullable=False, unique=True),
        sa.Column("model_version", sa.String(64), nullable=True),
        sa.Column("scored_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    # Registration order (created_at, then id) is the order every table received a
    # household's rows: the national rescoring's batches follow it, so a batch's rows lie
    # together. The index serves the planning scan and each batch's read.
    op.create_index("ix_rsu_households_created", "rsu_households", ["created_at", "household_id"])
    op.create_table(
        "rsu_members",
        # Primary key on the IDCS alone: a person is in at most one household at a time,
        # enforced by the database even against two concurrent registrations.
        sa.Column("idcs", sa.String(10), primary_key=True),
        sa.Column("household_id", sa.String(32), nullable=False),
        sa.Column("joined_at", TS, nullable=False),
    )
    op.create_index("ix_rsu_members_household_id", "rsu_members", ["household_id"])
    op.create_table(
        "rsu_rescore_jobs",
        sa.Column("job_id", sa.String(40), primary_key=True),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("batch_size", sa.Integer, nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.Column("started_at_ns", sa.BigInteger, nullable=False),
        sa.Column("finished_at_ns", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "rsu_rescore_batches",
        sa.Column("job_id", sa.String(40), primary_key=True),
        sa.Column("batch_no", sa.Integer, primary_key=True),
        sa.Column("first_household", sa.String(32), nullable=False),
        sa.Column("last_household", sa.String(32), nullable=False),
        # The batch's bounds in registration order (with first/last_household).
        sa.Column("first_created_at", TS, nullable=False),
        sa.Column("last_created_at", TS, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        # pending -> claimed (a worker started it; set before any side effect) -> done
        # (committed together with the households' model versions).
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("claimed_at_ns", sa.BigInteger, nullable=True),
        sa.Column("done_at_ns", sa.BigInteger, nullable=True),
        sa.CheckConstraint("status IN ('pending', 'claimed', 'done')", name="ck_rsu_batch_status"),
    )


def downgrade() -> None:
    op.drop_table("rsu_rescore_batches")
    op.drop_table("rsu_rescore_jobs")
    op.drop_index("ix_rsu_members_household_id", table_name="rsu_members")
    op.drop_table("rsu_members")
    op.drop_index("ix_rsu_households_created", table_name="rsu_households")
    op.drop_table("rsu_households")
