"""The vault store's tables (SQLAlchemy Core). Migrations: gateway/migrations/versions/vault/.

Nothing here holds plaintext: field values are AES-256-GCM ciphertexts, data keys are wrapped
by the KEK. Subject ids are the registry's opaque vault ids, never an IDCS or a name.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
)

__all__ = ["data_keys", "fields", "metadata", "rotations", "secrets", "subjects"]

metadata = MetaData()

subjects = Table(
    "vault_subjects",
    metadata,
    Column("subject", String(128), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("created_at_ns", BigInteger, nullable=False),
    # Set when the subject was crypto-shredded; the row stays so that reveal can say "erased".
    Column("erased_at_ns", BigInteger, nullable=True),
)

data_keys = Table(
    "vault_data_keys",
    metadata,
    Column("subject", String(128), primary_key=True),
    Column("version", Integer, primary_key=True),  # the key id in each ciphertext's header
    Column("kek_version", Integer, nullable=False, index=True),
    Column("wrapped", LargeBinary, nullable=False),
    Column("created_at_ns", BigInteger, nullable=False),
)

fields = Table(
    "vault_fields",
    metadata,
    Column("subject", String(128), primary_key=True),
    Column("field", String(64), primary_key=True),
    Column("ciphertext", LargeBinary, nullable=False),
)

secrets = Table(
    "vault_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("kek_version", Integer, nullable=False),
    Column("wrapped", LargeBinary, nullable=False),
)

rotations = Table(
    "vault_rotations",
    metadata,
    Column("target_version", Integer, primary_key=True),
    Column("started_at_ns", BigInteger, nullable=False),
    Column("finished_at_ns", BigInteger, nullable=True),
    Column("rewrapped", BigInteger, nullable=False),
    Column("total", BigInteger, nullable=False),
)
