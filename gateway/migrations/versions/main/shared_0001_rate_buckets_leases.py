"""main store: state every gateway process and host shares

``agency_rate_buckets``: one token bucket per agency client (gateway/ratelimit.py). On
PostgreSQL the table is UNLOGGED: it writes no WAL, so a bucket update costs no disk flush; a
crash empties it, which only refills every bucket, and it is not copied to standbys, which after
a failover start with full buckets.

``leases``: named leases with a fencing token (gateway/leases.py): one process at a time signs
checkpoints, and scheduled jobs run under the same kind of lease.

Revision ID: shared_0001
Revises:
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "shared_0001"
down_revision = None
branch_labels = ("shared",)
depends_on = None


def upgrade() -> None:
    unlogged = ["UNLOGGED"] if op.get_bind().dialect.name == "postgresql" else []
    op.create_table(
        "agency_rate_buckets",
        sa.Column("client_id", sa.String(128), primary_key=True),
        sa.Column("tokens", sa.Double(), nullable=False),
        # Seconds since the epoch, by the database's clock (every host reads the same one).
        sa.Column("updated_at", sa.Double(), nullable=False),
        prefixes=unlogged,
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("holder", sa.String(256), nullable=False),
        # Raised by one at every change of holder: a write fenced by an older token is refused.
        sa.Column("token", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_table("agency_rate_buckets")
