"""Offline verification: a whole exported log, or one citizen's receipt, with no database.

Anyone (the CNDP, a court, a journalist, the citizen) can run these with only the export or
the receipt and the log's verifier key. They recompute everything from the entry bytes and
trust nothing in the export but the Ed25519 signatures on its checkpoints.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.checkpoint import Checkpoint, NoteVerifier, open_checkpoint
from audit.entry import AuditEntry
from audit.errors import AuditError, InvalidCheckpoint, InvalidEntry
from audit.merkle import (
    MemoryTree,
    NodeKey,
    fold,
    leaf_hash,
    node_hash,
    range_nodes,
    split_point,
    verify_consistency,
    verify_inclusion,
)

EXPORT_FORMAT = "sijill-audit-export/1"
RECEIPT_FORMAT = "sijill-audit-receipt/1"


class VerificationFailed(AuditError):
    """A receipt or export does not prove what it claims."""


@dataclass
class ExportRow:
    index: int
    entry: bytes
    leaf_hash: bytes | None = None


@dataclass
class Export:
    """A log as exported by ``sijill audit export`` (JSON Lines), parsed."""

    origin: str
    verifier_key: str
    rows: list[ExportRow] = field(default_factory=list)
    # Stored complete-subtree hashes: untrusted witnesses that, once authenticated top-down
    # from a signed root, pin the exact leaf that was altered.
    nodes: dict[NodeKey, bytes] = field(default_factory=dict)
    checkpoints: list[str] = field(default_factory=list)

    @classmethod
    def from_lines(cls, lines: Iterable[str]) -> Export:
        it = iter(lines)
        try:
            header = json.loads(next(it))
        except (StopIteration, ValueError):
            raise VerificationFailed("the export has no header line") from None
        if not isinstance(header, dict) or header.get("format") != EXPORT_FORMAT:
            raise VerificationFailed(f"not a {EXPORT_FORMAT} export")
        export = cls(str(header["origin"]), str(header["verifier_key"]))
        for number, line in enumerate(it, start=2):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if "checkpoint" in obj:
                    export.checkpoints.append(str(obj["checkpoint"]))
                elif "node" in obj:
                    level, index = obj["node"]
                    export.nodes[(int(level), int(index))] = bytes.fromhex(obj["hash"])
                else:
                    lh = obj.get("leaf_hash")
                    export.rows.append(
                        ExportRow(
                            int(obj["index"]),
                            str(obj["entry"]).encode(),
                            bytes.fromhex(lh) if lh else None,
                        )
                    )
            except (ValueError, KeyError, TypeError):
                raise VerificationFailed(f"export line {number} is malformed") from None
        return export

    @classmethod
    def read(cls, path: Path) -> Export:
        with path.open(encoding="utf-8") as fh:
            return cls.from_lines(fh)


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    tree_size: int
    root_hash: bytes
    checkpoints_verified: int
    first_bad_index: int | None = None
    problem: str | None = None
    latest_checkpoint: Checkpoint | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "checkpoints_verified": self.checkpoints_verified,
            "first_bad_index": self.first_bad_index,
            "problem": self.problem,
        }


def _stored_range(nodes: Mapping[NodeKey, bytes], start: int, end: int) -> bytes | None:
    keys = range_nodes(start, end)
    if any(k not in nodes for k in keys):
        return None
    return fold([nodes[k] for k in keys])


def _localise(
    tree: MemoryTree, nodes: Mapping[NodeKey, bytes], size: int, root: bytes
) -> tuple[int, bool]:
    """Descend from a signed root to the leftmost leaf whose recomputed hash differs.

    Each step authenticates the two stored children against their already-authentic parent
    (collision resistance of SHA-256), so the descent follows true hashes even though the
    export is untrusted. Returns (index, exact); not exact if the stored nodes were also
    altered and the descent had to stop early.
    """
    lo, hi, auth = 0, size, root
    while hi - lo > 1:
        k = split_point(hi - lo)
        left, right = _stored_range(nodes, lo, lo + k), _stored_range(nodes, lo + k, hi)
        if left is None or right is None or node_hash(left, right) != auth:
            break
        if tree.subtree(lo, lo + k) != left:
            hi, auth = lo + k, left
        else:
            lo, auth = lo + k, right
    else:
        return lo, True
    for index in range(lo, hi):  # best effort: the first leaf that disagrees with its witness
        if nodes.get((0, index)) != tree.levels[0][index]:
            return index, False
    return lo, False


def verify(
    export: Export,
    trusted_checkpoint: str | None = None,
    *,
    verifier_key: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """Recompute the whole tree, check every checkpoint signature, root and the consistency
    between successive checkpoints; name the first bad index if any.

    ``verifier_key`` pins the log's key (else the export's own is used, which proves integrity
    only relative to whoever made the export); ``trusted_checkpoint`` is a note obtained
    earlier (e.g. from a witness): the log must still contain exactly that tree.
    """
    tree = MemoryTree()
    bad: list[tuple[int, str]] = []
    try:
        key = NoteVerifier.parse(verifier_key or export.verifier_key)
    except InvalidCheckpoint as exc:
        return VerifyReport(False, 0, tree.root(), 0, None, f"verifier key: {exc}")
    total = len(export.rows)
    previous = -1
    for pos, row in enumerate(export.rows):
        if row.index != pos:
            if row.index == previous:
                bad.append((row.index, f"index {row.index} appears twice (a row was inserted)"))
            else:
                bad.append((pos, f"index {pos} is missing or out of order (found {row.index})"))
            break
        previous = row.index
        try:
            AuditEntry.from_canonical(row.entry)
        except InvalidEntry as exc:
            bad.append((pos, f"entry {pos} is not a valid canonical entry: {exc}"))
            break
        leaf = leaf_hash(row.entry)
        if row.leaf_hash is not None and row.leaf_hash != leaf:
            bad.append((pos, f"entry {pos} does not match its recorded leaf hash"))
            break
        tree.append(leaf)
        if progress is not None and pos % 10000 == 0:
            progress(pos, total)
    if progress is not None:
        progress(total, total)

    notes: list[tuple[Checkpoint, bool]] = []
    for number, note in enumerate(export.checkpoints, start=1):
        try:
            notes.append((open_checkpoint(note, key, export.origin), False))
        except InvalidCheckpoint as exc:
            return VerifyReport(
                False, tree.size, tree.root(), 0, None, f"checkpoint {number}: {exc}"
            )
    if trusted_checkpoint is not None:
        try:
            notes.append((open_checkpoint(trusted_checkpoint, key, export.origin), True))
        except InvalidCheckpoint as exc:
            return VerifyReport(
                False, tree.size, tree.root(), 0, None, f"trusted checkpoint: {exc}"
            )
    notes.sort(key=lambda n: (n[0].tree_size, n[1]))

    verified = 0
    prev: Checkpoint | None = None
    for cp, trusted in notes:
        label = "trusted checkpoint" if trusted else f"checkpoint at size {cp.tree_size}"
        if cp.tree_size > tree.size:
            bad.append((tree.size, f"{label}: the log ends before index {tree.size}"))
            break
        if tree.root(cp.tree_size) != cp.root_hash:
            index, exact = _localise(tree, export.nodes, cp.tree_size, cp.root_hash)
            where = f"index {index}" if exact else f"at or after index {index}"
            bad.append((index, f"{label}: root differs; first altered leaf {where}"))
            break
        if prev is not None and not verify_consistency(
            prev.tree_size,
            cp.tree_size,
            prev.root_hash,
            cp.root_hash,
            tree.consistency_proof(prev.tree_size, cp.tree_size),
        ):
            bad.append((prev.tree_size, f"{label} is not consistent with the one before"))
            break
        verified += 1
        prev = cp
    latest = prev
    if bad:
        index, problem = min(bad)
        return VerifyReport(False, tree.size, tree.root(), verified, index, problem, latest)
    if not notes and tree.size:
        return VerifyReport(
            False, tree.size, tree.root(), 0, None, "no signed checkpoint covers the log"
        )
    if prev is not None and prev.tree_size < tree.size:
        # Entries after the last checkpoint are hashed but not yet committed to by a signature.
        return VerifyReport(
            True,
            tree.size,
            tree.root(),
            verified,
            None,
            f"entries from index {prev.tree_size} on are not yet checkpointed",
            latest,
        )
    return VerifyReport(True, tree.size, tree.root(), verified, None, None, latest)


def verify_receipt(receipt: Mapping[str, Any], verifier_key: str | None = None) -> AuditEntry:
    """Check a citizen's receipt offline; return the entry it proves is in the log.

    Pass the log's ``verifier_key`` obtained out of band (published by the CNDP); without it the
    receipt's own key is used, which proves only that the holder of that key logged the entry.
    """
    try:
        if receipt.get("format") != RECEIPT_FORMAT:
            raise VerificationFailed(f"not a {RECEIPT_FORMAT} receipt")
        cp = open_checkpoint(
            str(receipt["checkpoint"]), verifier_key or str(receipt["verifier_key"])
        )
        raw = str(receipt["entry"]).encode()
        entry = AuditEntry.from_canonical(raw)
        leaf = leaf_hash(raw)
        index, size = int(receipt["leaf_index"]), int(receipt["tree_size"])
        path = [bytes.fromhex(h) for h in receipt["audit_path"]]
        claimed = bytes.fromhex(str(receipt["leaf_hash"]))
    except (InvalidCheckpoint, InvalidEntry) as exc:
        raise VerificationFailed(str(exc)) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise VerificationFailed(f"malformed receipt: {type(exc).__name__}") from None
    if claimed != leaf:
        raise VerificationFailed("the entry does not hash to the receipt's leaf hash")
    if size != cp.tree_size:
        raise VerificationFailed("the proof is not for the checkpoint's tree size")
    if not verify_inclusion(leaf, index, size, path, cp.root_hash):
        raise VerificationFailed("the inclusion proof does not lead to the signed root")
    return entry
