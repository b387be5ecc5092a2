"""main store: certificate-bound tokens and certificate client authentication (RFC 8705)

``tls_client_certificate_bound_access_tokens`` (§3.4): the client's access tokens carry the
SHA-256 thumbprint of the certificate it presented at the token endpoint, and the resource
server refuses them without that certificate. ``token_endpoint_auth_method`` (RFC 7591 §2):
``private_key_jwt`` (every existing client) or ``self_signed_tls_client_auth`` (§2.2).

Revision ID: oauth_0004
Revises: oauth_0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "oauth_0004"
down_revision = "oauth_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("oauth_clients") as batch:
        batch.add_column(
            sa.Column(
                "tls_client_certificate_bound_access_tokens",
                sa.Boolean,
                nullable=False,
                server_default=sa.false(),
            )
        )
        batch.add_column(
            sa.Column(
                "token_endpoint_auth_method",
                sa.String(32),
                nullable=False,
                server_default="private_key_jwt",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("oauth_clients") as batch:
        batch.drop_column("token_endpoint_auth_method")
        batch.drop_column("tls_client_certificate_bound_access_tokens")
