"""main store: a bulk import's batches, each a job row that one worker at a time claims

``rnp_import_batches``: one row per batch of an import file (a range of its lines), with its
claim: the holder, a fencing token raised by one at every claim and the claim's expiry
(seconds since the epoch, by the database's clock on PostgreSQL). A batch commits only under
a live claim with its token (identity/bulk.py), so a worker whose claim expired cannot write
its rows after another worker took the batch over. ``done_at`` and the batch's counts are set
in the batch's committing transaction.

Revision ID: enrol_0001
Revises:
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "enrol_0001"
down_revision = None
branch_labels = ("enrol",)
depends_on = "identity_0001"


def upgrade() -> None:
    op.create_table(
        "rnp_import_batches",
        sa.Column(
            "job_id", sa.String(64), sa.ForeignKey("rnp_import_jobs.job_id"), primary_key=True
        ),
        sa.Column("batch_no", sa.Integer, primary_key=True),
        sa.Column("first_line", sa.Integer, nullable=False),
        sa.Column("last_line", sa.Integer, nullable=False),
        sa.Column("holder", sa.String(128), nullable=True),
        sa.Column("token", sa.Integer, nullable=False, server_default="0"),
        sa.Column("expires_at", sa.Double(), nullable=False, server_default="0"),
        sa.Column("enrolled", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rejected", sa.Integer, nullable=False, server_default="0"),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("rnp_import_batches")
