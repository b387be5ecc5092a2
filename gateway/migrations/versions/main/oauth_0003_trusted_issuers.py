"""main store: the identity providers an agency client trusts for its officials (RFC 8693)

``oauth_trusted_issuers``: one row per (client, issuer), with the issuer's public JWKS. The
token-exchange grant (identity/oauth/exchange.py) accepts an official's ID token as
``subject_token`` only when it is signed by a key of an issuer the calling client registered
here, so one agency's identity provider can never vouch for another agency's staff.

Revision ID: oauth_0003
Revises: oauth_0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "oauth_0003"
down_revision = "oauth_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oauth_trusted_issuers",
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("issuer", sa.String(255), nullable=False),
        sa.Column("jwks", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("client_id", "issuer", name="pk_oauth_trusted_issuers"),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["oauth_clients.client_id"],
            name="fk_oauth_trusted_issuers_client",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("oauth_trusted_issuers")
