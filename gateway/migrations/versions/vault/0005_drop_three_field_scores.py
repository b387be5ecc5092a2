"""vault store: remove scores kept in the three-field form

A household's score is one ciphertext, "<index> <model version> <model SHA-256>" in the field
``score``, so the index can never be read apart from the model that produced it. A store may
still hold scores written with the model's version and digest in two fields of their own
(``score_model``, ``score_model_digest``) beside an index-only ``score``; the vault reads only
the one-field form.

Converting such a score means decrypting and re-encrypting it, which needs the KEK, and a
migration runs without keys. So the migration removes them instead: the two fields, and the
score they belong to (recognised by its record holding them; the ciphertexts stay sealed).
Each household concerned then has no score until it is scored again (``sijill rsu rescore``),
which computes the same index from the same declaration and model. ``sijill vault check``
reports whether a store holds anything in that form.

The downgrade restores nothing: the removed scores are computed again by a rescoring.

Revision ID: vault_0005
Revises: vault_0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "vault_0005"
down_revision = "vault_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "DELETE FROM vault_scores WHERE subject IN (SELECT subject FROM vault_fields "
        "WHERE field IN ('score_model', 'score_model_digest'))"
    )
    op.execute("DELETE FROM vault_fields WHERE field IN ('score_model', 'score_model_digest')")


def downgrade() -> None:
    pass
