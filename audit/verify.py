"""Offline verification: a whole exported log, or one citizen's receipt, with no database.

Anyone (the CNDP, a court, a journalist, the citizen) can run these with only the export or
the receipt and the log's verifier key. They recompute everything from the entry bytes and
trust nothing in the export but the Ed25519 signatures on its checkpoints.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.checkpoint import Checkpoint, NoteVerifier, open_checkpoint
from audit.cosignature import CosignatureVerifier
from audit.entry import AuditEntry
from audit.errors import AuditError, InvalidCheckpoint, InvalidEntry
from audit.memory import TrustedHead
from audit.merkle import (
    MemoryTree,
    NodeKey,
    fold,
    leaf_hash,
    node_hash,
    range_nodes,
    split_point,
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


@dataclass(frozen=True)
class _Anchor:
    label: str
    size: int
    root: bytes
    stored: bool
    checkpoint: bool


def _problem_at_anchor(
    tree: MemoryTree,
    nodes: Mapping[NodeKey, bytes],
    anchor: _Anchor,
    lower: int,
) -> tuple[int, str]:
    """Where the recomputed tree departs from ``anchor``, which the tree up to ``lower``
    still matches: an exact index if the stored nodes still say it (or one entry is in
    question), else the range between the two."""
    index, exact = _localise(tree, nodes, anchor.size, anchor.root)
    if exact or anchor.size - lower == 1:
        at = index if exact else lower
        return at, f"entry {at} differs from what {anchor.label} covers"
    at = max(index, lower)
    return at, (
        f"an entry from index {at} to {anchor.size - 1} differs from what {anchor.label} "
        "covers (the tree nodes were rebuilt to match, so no finer index can be proven)"
    )


def verify(
    export: Export,
    trusted_checkpoint: str | None = None,
    *,
    verifier_key: str | None = None,
    witnesses: Sequence[CosignatureVerifier] = (),
    trusted_heads: Sequence[TrustedHead] = (),
    progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """Recompute the whole tree, check every checkpoint's signature and the cosignatures of
    the known ``witnesses``, the tree against every checkpoint and every head known from
    outside the store (``trusted_heads``, ``trusted_checkpoint``), and name the first bad
    index and its cause.

    ``verifier_key`` pins the log's key (else the export's own is used, which proves integrity
    only relative to whoever made the export).
    """
    tree = MemoryTree()
    problems: list[tuple[int, int, str]] = []  # (index, order found, what)

    def fail(index: int | None, problem: str) -> None:
        problems.append((index if index is not None else 1 << 62, len(problems), problem))

    try:
        key = NoteVerifier.parse(verifier_key or export.verifier_key)
    except InvalidCheckpoint as exc:
        return VerifyReport(False, 0, tree.root(), 0, None, f"verifier key: {exc}")
    total = len(export.rows)
    previous = -1
    for pos, row in enumerate(export.rows):
        if row.index != pos:
            if row.index == previous:
                fail(row.index, f"index {row.index} appears twice (a row was inserted)")
            else:
                fail(pos, f"index {pos} is missing or out of order (found {row.index})")
            break
        previous = row.index
        try:
            AuditEntry.from_canonical(row.entry)
        except InvalidEntry as exc:
            fail(pos, f"entry {pos} is not a valid canonical entry: {exc}")
            break
        leaf = leaf_hash(row.entry)
        if row.leaf_hash is not None and row.leaf_hash != leaf:
            fail(pos, f"entry {pos} does not match its recorded leaf hash")
            break
        tree.append(leaf)
        if progress is not None and pos % 10000 == 0:
            progress(pos, total)
    if progress is not None:
        progress(total, total)

    anchors: list[_Anchor] = []
    opened: list[Checkpoint] = []
    for number, note in enumerate(export.checkpoints, start=1):
        try:
            cp = open_checkpoint(note, key, export.origin)
            for witness in witnesses:
                witness.verify(note)
        except InvalidCheckpoint as exc:
            return VerifyReport(
                False, tree.size, tree.root(), 0, None, f"checkpoint {number}: {exc}"
            )
        opened.append(cp)
    opened.sort(key=lambda c: c.tree_size)
    stored_heads = {(c.tree_size, c.root_hash) for c in opened}
    for number, cp in enumerate(opened, start=1):
        label = f"checkpoint {number} (size {cp.tree_size})"
        anchors.append(_Anchor(label, cp.tree_size, cp.root_hash, True, True))
    if trusted_checkpoint is not None:
        try:
            cp = open_checkpoint(trusted_checkpoint, key, export.origin)
        except InvalidCheckpoint as exc:
            return VerifyReport(
                False, tree.size, tree.root(), 0, None, f"trusted checkpoint: {exc}"
            )
        anchors.append(
            _Anchor(
                f"the trusted checkpoint (size {cp.tree_size})",
                cp.tree_size,
                cp.root_hash,
                False,
                True,
            )
        )
    for head in trusted_heads:
        anchors.append(_Anchor(head.label, head.size, head.root, False, head.checkpoint))
    anchors.sort(key=lambda a: (a.size, a.stored))

    verified = 0
    good = 0  # the tree up to this size matches every anchor so far
    good_label: str | None = None
    latest: Checkpoint | None = None
    for anchor in anchors:
        if anchor.size > tree.size:
            if anchor.stored:
                fail(
                    tree.size,
                    f"{anchor.label} covers entries the log no longer holds: "
                    f"it ends before index {tree.size}",
                )
            else:
                fail(
                    tree.size,
                    f"the log ends before index {tree.size}, short of {anchor.label}: "
                    "entries were removed",
                )
            break
        if tree.root(anchor.size) != anchor.root:
            index, problem = _problem_at_anchor(tree, export.nodes, anchor, good)
            if good_label is not None and not anchor.stored:
                problem += f"; the store's tree matches {good_label} only"
            fail(index, problem)
            break
        if (
            anchor.checkpoint
            and not anchor.stored
            and (anchor.size, anchor.root) not in stored_heads
        ):
            fail(None, f"{anchor.label} is missing from the store (its row was deleted)")
        if anchor.stored:
            verified += 1
        good, good_label = anchor.size, anchor.label
    for cp in opened:
        if cp.tree_size <= good:
            latest = cp
    if problems:
        index, _order, problem = min(problems)
        first = index if index < 1 << 62 else None
        return VerifyReport(False, tree.size, tree.root(), verified, first, problem, latest)
    if not opened and tree.size:
        return VerifyReport(
            False, tree.size, tree.root(), 0, None, "no signed checkpoint covers the log"
        )
    signed = max((c.tree_size for c in opened), default=0)
    if signed < tree.size:
        # Hashed, and covered by the signer's memory if it was given, but not yet signed.
        return VerifyReport(
            True,
            tree.size,
            tree.root(),
            verified,
            None,
            f"{tree.size - signed} entries (from index {signed}) are not yet covered by any "
            "checkpoint",
            latest,
        )
    return VerifyReport(True, tree.size, tree.root(), verified, None, None, latest)


def verify_receipt(
    receipt: Mapping[str, Any],
    verifier_key: str | None = None,
    *,
    witnesses: Sequence[CosignatureVerifier | str] = (),
    min_witnesses: int = 0,
) -> AuditEntry:
    """Check a citizen's receipt offline; return the entry it proves is in the log.

    Pass the log's ``verifier_key`` obtained out of band (published by the CNDP); without it the
    receipt's own key is used, which proves only that the holder of that key logged the entry.
    With ``min_witnesses``, at least that many of ``witnesses`` (their published keys) must have
    cosigned the receipt's checkpoint: the log cannot then show this citizen a history that
    those witnesses were not shown too.
    """
    try:
        if receipt.get("format") != RECEIPT_FORMAT:
            raise VerificationFailed(f"not a {RECEIPT_FORMAT} receipt")
        note = str(receipt["checkpoint"])
        cp = open_checkpoint(note, verifier_key or str(receipt["verifier_key"]))
        keys = [
            w if isinstance(w, CosignatureVerifier) else CosignatureVerifier.parse(w)
            for w in witnesses
        ]
        cosigned = [k.name for k in keys if k.verify(note) is not None]
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
    if len(cosigned) < min_witnesses:
        raise VerificationFailed(
            f"the checkpoint is cosigned by {len(cosigned)} of the required witnesses "
            f"({min_witnesses} needed)"
        )
    if claimed != leaf:
        raise VerificationFailed("the entry does not hash to the receipt's leaf hash")
    if size != cp.tree_size:
        raise VerificationFailed("the proof is not for the checkpoint's tree size")
    if not verify_inclusion(leaf, index, size, path, cp.root_hash):
        raise VerificationFailed("the inclusion proof does not lead to the signed root")
    return entry
