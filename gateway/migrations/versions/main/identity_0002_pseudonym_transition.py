"""main store: the transition period of a rotated sector pseudonym key

``transition_ends_at``: when a key version that a rotation superseded may be retired (`sijill
pseudonyms rotate SECTOR --transition DAYS`). Until then its pseudonyms still resolve and the
sector's agencies translate the ones they hold to the current version; `sijill pseudonyms
retire` refuses before it unless forced. Null for the current version and for versions
superseded before this column existed (retirable at once, as they were).

Revision ID: identity_0002
Revises: identity_0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "identity_0002"
down_revision = "identity_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rnp_pseudonym_keys") as batch:
        batch.add_column(sa.Column("transition_ends_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("rnp_pseudonym_keys") as batch:
        batch.drop_column("transition_ends_at")
