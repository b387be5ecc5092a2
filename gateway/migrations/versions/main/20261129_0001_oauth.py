"""oauth: client registry, replay and revocation stores, authorization codes, login accounts

Revision ID: oauth_0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "oauth_0001"
down_revision = None
branch_labels = ("oauth",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oauth_clients",
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("sector", sa.String(64), nullable=False),
        sa.Column("jwks", sa.Text, nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("purposes", sa.Text, nullable=False),
        sa.Column("grant_types", sa.Text, nullable=False),
        sa.Column("redirect_uris", sa.Text, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.CheckConstraint(
            "kind IN ('agency', 'office', 'auditor', 'portal')", name="ck_oauth_clients_kind"
        ),
    )
    op.create_table(
        "oauth_used_jti",
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("issuer", sa.String(128), nullable=False),
        sa.Column("jti", sa.String(255), nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("kind", "issuer", "jti", name="pk_oauth_used_jti"),
    )
    op.create_index("ix_oauth_used_jti_expires_at", "oauth_used_jti", ["expires_at"])
    op.create_table(
        "oauth_revoked_tokens",
        sa.Column("jti", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "oauth_authorization_codes",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("nonce", sa.String(255), nullable=True),
        sa.Column("code_challenge", sa.String(128), nullable=False),
        sa.Column("code_challenge_method", sa.String(8), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("subject_kind", sa.String(16), nullable=False),
        sa.Column("auth_time", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "oauth_users",
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("totp_secret", sa.LargeBinary, nullable=False),
        sa.Column("failed_count", sa.Integer, nullable=False),
        sa.Column("locked_until", sa.BigInteger, nullable=False),
        sa.Column("last_totp_step", sa.BigInteger, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.CheckConstraint("kind IN ('officer', 'auditor')", name="ck_oauth_users_kind"),
    )
    op.create_table(
        "citizen_credentials",
        sa.Column("idcs", sa.String(10), primary_key=True),
        sa.Column("totp_secret", sa.LargeBinary, nullable=False),
        sa.Column("failed_count", sa.Integer, nullable=False),
        sa.Column("locked_until", sa.BigInteger, nullable=False),
        sa.Column("last_totp_step", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "citizen_credentials",
        "oauth_users",
        "oauth_authorization_codes",
        "oauth_revoked_tokens",
        "oauth_used_jti",
        "oauth_clients",
    ):
        op.drop_table(table)
