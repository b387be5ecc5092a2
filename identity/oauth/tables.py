"""The authorization server's tables (``main`` store), as SQLAlchemy Core.

The migration ``gateway/migrations/versions/main/*_oauth_*.py`` creates the same tables by
hand; these definitions are what the code queries with. Times are integer Unix seconds so that
comparisons behave the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    false,
)

metadata = MetaData()

clients = Table(
    "oauth_clients",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("sector", String(64), nullable=False),
    Column("jwks", Text, nullable=False),
    Column("scopes", Text, nullable=False),
    Column("purposes", Text, nullable=False),
    Column("grant_types", Text, nullable=False),
    Column("redirect_uris", Text, nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # RFC 9449 §5.2: DPoP-bound tokens only, never a bearer token (migration oauth_0002).
    Column("dpop_bound_access_tokens", Boolean, nullable=False, server_default=false()),
    # RFC 8705 §3.4 and §2.2 (migration oauth_0004): certificate-bound tokens, and how the
    # client authenticates at the token endpoint.
    Column(
        "tls_client_certificate_bound_access_tokens",
        Boolean,
        nullable=False,
        server_default=false(),
    ),
    Column(
        "token_endpoint_auth_method",
        String(32),
        nullable=False,
        server_default="private_key_jwt",
    ),
)

# The identity providers an agency trusts for its officials' ID tokens (RFC 8693 token
# exchange, migration oauth_0003): the issuer and its public keys, per client.
trusted_issuers = Table(
    "oauth_trusted_issuers",
    metadata,
    Column(
        "client_id",
        String(64),
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("issuer", String(255), nullable=False),
    Column("jwks", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("client_id", "issuer", name="pk_oauth_trusted_issuers"),
)

# One row per JWT id seen (client assertions, DPoP proofs). The primary key is the replay
# check: a second INSERT of the same (kind, issuer, jti) fails in every worker process.
used_jti = Table(
    "oauth_used_jti",
    metadata,
    Column("kind", String(16), nullable=False),
    Column("issuer", String(128), nullable=False),
    Column("jti", String(255), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("kind", "issuer", "jti", name="pk_oauth_used_jti"),
)

revoked_tokens = Table(
    "oauth_revoked_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=False),
)

authorization_codes = Table(
    "oauth_authorization_codes",
    metadata,
    # SHA-256 of the code: a database read does not yield a usable code.
    Column("code_hash", String(64), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("nonce", String(255), nullable=True),
    Column("code_challenge", String(128), nullable=False),
    Column("code_challenge_method", String(8), nullable=False),
    Column("subject", String(64), nullable=False),
    Column("subject_kind", String(16), nullable=False),
    Column("auth_time", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)

# Officers and CNDP auditors: argon2 password + TOTP (secret encrypted, see secrets.py).
users = Table(
    "oauth_users",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("totp_secret", LargeBinary, nullable=False),
    Column("failed_count", Integer, nullable=False),
    Column("locked_until", BigInteger, nullable=False),
    Column("last_totp_step", BigInteger, nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

citizen_credentials = Table(
    "citizen_credentials",
    metadata,
    Column("idcs", String(10), primary_key=True),
    Column("totp_secret", LargeBinary, nullable=False),
    Column("failed_count", Integer, nullable=False),
    Column("locked_until", BigInteger, nullable=False),
    Column("last_totp_step", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
