"""vault store: the feature vector each household was last scored from

Computing the variables a model reads means decrypting, parsing and walking the household's
declaration (about 2 KiB of JSON). So the vault keeps, beside the declaration, the compact
vector of those variables it last scored the household from (vault.scoring.features,
docs/scoring.md): a rescoring with another model over the same feature catalogue decrypts that
vector instead. Rewriting or erasing the declaration deletes the vector; the next scoring
derives it again from the declaration and stores it with the score.

Nothing moves: a record without a vector gets one at its next scoring. The downgrade drops the
table (every vector can be derived again from its declaration).

Revision ID: vault_0004
Revises: vault_0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "vault_0004"
down_revision = "vault_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vault_features",
        sa.Column("subject", sa.String(128), primary_key=True),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("vault_features")
