"""vault store: subjects, wrapped data keys, field ciphertexts, wrapped secrets, rotations

Revision ID: vault_0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "vault_0001"
down_revision = None
branch_labels = ("vault",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vault_subjects",
        sa.Column("subject", sa.String(128), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("created_at_ns", sa.BigInteger, nullable=False),
        sa.Column("erased_at_ns", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "vault_data_keys",
        sa.Column("subject", sa.String(128), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("kek_version", sa.Integer, nullable=False),
        sa.Column("wrapped", sa.LargeBinary, nullable=False),
        sa.Column("created_at_ns", sa.BigInteger, nullable=False),
    )
    # Rotation finds the keys still under an old KEK version through this index.
    op.create_index("ix_vault_data_keys_kek_version", "vault_data_keys", ["kek_version"])
    op.create_table(
        "vault_fields",
        sa.Column("subject", sa.String(128), primary_key=True),
        sa.Column("field", sa.String(64), primary_key=True),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "vault_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("kek_version", sa.Integer, nullable=False),
        sa.Column("wrapped", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "vault_rotations",
        sa.Column("target_version", sa.Integer, primary_key=True),
        sa.Column("started_at_ns", sa.BigInteger, nullable=False),
        sa.Column("finished_at_ns", sa.BigInteger, nullable=True),
        sa.Column("rewrapped", sa.BigInteger, nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for name in ("vault_rotations", "vault_secrets", "vault_fields"):
        op.drop_table(name)
    op.drop_index("ix_vault_data_keys_kek_version", "vault_data_keys")
    op.drop_table("vault_data_keys")
    op.drop_table("vault_subjects")
