"""The audit store's tables, as the audit migrations create them.

Rows are append-only: the audit migration installs triggers that reject UPDATE/DELETE (and
TRUNCATE on PostgreSQL) of entries, nodes and checkpoints, and any shrinking of the head.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from audit.merkle import NodeKey

metadata = MetaData()

head_table = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("tree_size", BigInteger, nullable=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    # The tree's right edge (audit_0005): the complete-subtree hashes whose fold is the root,
    # one per set bit of tree_size, largest subtree first, 32 bytes each. Read with the locked
    # head, it is all an append needs of the tree, so no node is read under the lock.
    Column("right_edge", LargeBinary),
)
entries_table = Table(
    "audit_entries",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("entry", Text, nullable=False),
    Column("time_ns", BigInteger, nullable=False),
    Column("subject", String(128)),
    Column("actor_kind", String(16), nullable=False),
    Column("actor_id", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("purpose", String(200)),
    Column("outcome", String(8), nullable=False),
    # The acting official's pseudonymous id, when an agency's call named one (audit_0004).
    Column("official", String(64)),
    # The court order a law-enforcement query was made under, when one was (audit_0005).
    Column("court_order", String(64)),
)
nodes_table = Table(
    "audit_nodes",
    metadata,
    # (level << 48) | index: one integer key so a proof is a single primary-key IN lookup.
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)
checkpoints_table = Table(
    "audit_checkpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tree_size", BigInteger, nullable=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("timestamp_ns", BigInteger, nullable=False),
    Column("note", Text, nullable=False),
)

meta_table = Table(
    "audit_meta",
    metadata,
    # Set once when the log is initialised (origin, verifier key), never changed: a verifier
    # reads them here instead of deriving them from how the server happens to be run.
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
cosignatures_table = Table(
    "audit_cosignatures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tree_size", BigInteger, nullable=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("witness", String(200), nullable=False),
    Column("line", Text, nullable=False),
)

LEVEL_SHIFT = 48
# The subject index (migration audit_0002) is keyed by segment first: idx / SUBJECT_SEGMENT.
SUBJECT_SEGMENT = 1 << 16


def node_id(key: NodeKey) -> int:
    level, index = key
    return (level << LEVEL_SHIFT) | index


def node_key(ident: int) -> NodeKey:
    return ident >> LEVEL_SHIFT, ident & ((1 << LEVEL_SHIFT) - 1)


HASH_SIZE = 32


def pack_edge(hashes: Sequence[bytes]) -> bytes:
    return b"".join(hashes)


def unpack_edge(packed: bytes | None) -> tuple[bytes, ...]:
    """The stored edge's hashes (none for an empty tree; a short or absent edge is caught by
    the log, whose fold of it must give the head's root)."""
    data = bytes(packed or b"")
    return tuple(data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE))


# Tables the log keeps outside its own store.
main_metadata = MetaData()
witness_metadata = MetaData()

# The signer's memory in the main store (audit/memory.py; migration audit_signer_0001).
signer_state_table = Table(
    "audit_signer_state",
    main_metadata,
    Column("origin", String(200), primary_key=True),
    Column("tree_size", BigInteger, nullable=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
)


# A witness's own store: the newest checkpoint it cosigned of each log (audit/witness.py).
witness_logs_table = Table(
    "witness_logs",
    witness_metadata,
    Column("origin", String(200), primary_key=True),
    Column("tree_size", BigInteger, nullable=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),  # the latest cosigned note, cosignature included
)
