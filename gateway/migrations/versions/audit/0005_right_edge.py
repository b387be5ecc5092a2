"""audit store: the tree's right edge kept in the head row

``audit_head.right_edge`` holds the complete-subtree hashes whose fold is the root (one per
set bit of the tree size, largest subtree first, 32 bytes each). The sequencer reads it with
the locked head and writes it with the head, so an append reads no tree node while it holds
the lock, whichever worker process appended last. An existing log's edge is filled from its
stored nodes; the log checks at every append that the edge folds to the head's root, so an
edge that could not be filled (nodes missing) makes appends fail closed rather than extend a
tree it cannot prove. A nullable column is added in place (no table rebuild), so the head's
triggers stay.

Revision ID: audit_0005
Revises: audit_0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "audit_0005"
down_revision = "audit_0004"
branch_labels = None
depends_on = None

LEVEL_SHIFT = 48  # audit_nodes.id = level << 48 | index


def edge_ids(size: int) -> list[int]:
    """The node ids of the complete subtrees that make up a tree of ``size`` leaves."""
    ids, pos = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            ids.append(level << LEVEL_SHIFT | pos >> level)
            pos += 1 << level
    return ids


def upgrade() -> None:
    op.add_column("audit_head", sa.Column("right_edge", sa.LargeBinary, nullable=True))
    conn = op.get_bind()
    size = conn.execute(sa.text("SELECT tree_size FROM audit_head WHERE id = 1")).scalar_one()
    ids = edge_ids(int(size))
    found: dict[int, bytes] = {}
    if ids:
        query = sa.text("SELECT id, hash FROM audit_nodes WHERE id IN :ids").bindparams(
            sa.bindparam("ids", expanding=True)
        )
        found = {int(i): bytes(h) for i, h in conn.execute(query, {"ids": ids})}
    edge = b"".join(found[i] for i in ids if i in found)
    conn.execute(sa.text("UPDATE audit_head SET right_edge = :edge WHERE id = 1"), {"edge": edge})


def downgrade() -> None:
    op.drop_column("audit_head", "right_edge")
