"""The whole log as JSON Lines (``sijill-audit-export/1``), and the records the log hands out:
proofs and entries as read back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from audit.cosignature import with_signature_lines
from audit.entry import AuditEntry
from audit.errors import AuditUnavailable, StoreUnavailable
from audit.storage import LogStorage

EXPORT_FORMAT = "sijill-audit-export/1"
_STORE_ERRORS = (StoreUnavailable, LookupError, OSError)


@dataclass(frozen=True)
class InclusionProof:
    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    audit_path: list[bytes]

    def to_json(self) -> dict[str, Any]:
        return {
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "leaf_hash": self.leaf_hash.hex(),
            "audit_path": [h.hex() for h in self.audit_path],
        }


@dataclass(frozen=True)
class ConsistencyProof:
    first: int
    second: int
    proof: list[bytes]

    def to_json(self) -> dict[str, Any]:
        return {"first": self.first, "second": self.second, "proof": [h.hex() for h in self.proof]}


@dataclass(frozen=True)
class LoggedEntry:
    """An entry as read back: its index, leaf hash and decoded content."""

    index: int
    leaf_hash: bytes
    entry: AuditEntry
    canonical: bytes

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "leaf_hash": self.leaf_hash.hex(), **self.entry.to_dict()}


def export_lines(storage: LogStorage, origin: str, verifier_key: str) -> Iterator[str]:
    """A store's whole log as JSON Lines (``sijill-audit-export/1``): a header, one line an
    entry, the complete-subtree nodes, then every checkpoint with the cosignatures gathered
    for it. Needs no signing key: a verifier runs it too."""
    try:
        checkpoints = storage.checkpoints()
        size, _ = storage.head()
        yield json.dumps(
            {
                "format": EXPORT_FORMAT,
                "origin": origin,
                "verifier_key": verifier_key,
                "tree_size": size,
            }
        )
        for row in storage.entries(0, size):
            yield json.dumps(
                {"index": row.index, "leaf_hash": row.leaf_hash.hex(), "entry": row.entry.decode()}
            )
        for level, index, h in storage.nodes(0):
            if (index + 1) << level <= size:
                yield json.dumps({"node": [level, index], "hash": h.hex()})
        for cp in checkpoints:
            lines = storage.cosignatures(cp.tree_size, cp.root_hash)
            yield json.dumps({"checkpoint": with_signature_lines(cp.note, lines)})
    except _STORE_ERRORS as exc:
        raise AuditUnavailable("the audit store is unreachable") from exc
