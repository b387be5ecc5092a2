"""main store: the sector pseudonyms held of one person, found by their IDCS

The right of access names the sectors that hold a pseudonym of the person
(``SectorPseudonyms.sectors_of``, ``GET /v1/me/export``) and an erasure deletes every one of
them: both look the person's pseudonyms up by IDCS, which without this index reads the whole
table.

Revision ID: identity_0003
Revises: identity_0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "identity_0003"
down_revision = "identity_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_rnp_pseudonyms_idcs", "rnp_pseudonyms", ["idcs"])


def downgrade() -> None:
    op.drop_index("ix_rnp_pseudonyms_idcs", "rnp_pseudonyms")
