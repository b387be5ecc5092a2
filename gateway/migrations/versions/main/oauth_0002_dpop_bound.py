"""main store: clients that must use sender-constrained tokens (RFC 9449 §5.2)

``dpop_bound_access_tokens``: the authorization server issues such a client DPoP-bound tokens
only, and the resource server refuses its tokens as bearer tokens. Existing clients keep what
they had (false); `sijill clients add` sets it for new agency clients.

Revision ID: oauth_0002
Revises: oauth_0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "oauth_0002"
down_revision = "oauth_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("oauth_clients") as batch:
        batch.add_column(
            sa.Column(
                "dpop_bound_access_tokens",
                sa.Boolean,
                nullable=False,
                server_default=sa.false(),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("oauth_clients") as batch:
        batch.drop_column("dpop_bound_access_tokens")
