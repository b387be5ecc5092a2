"""RFC 9162 (Certificate Transparency 2.0, same tree as RFC 6962) Merkle tree hashing and proofs.

The tree code is our own: pymerkle (the tests' independent oracle for roots) writes proofs in
its own format (leaf-inclusive paths with direction bits, not RFC 9162 audit paths), and its
storage seam holds leaves only, so a stored tree recomputes subtree roots from leaves and a proof
costs time linear in the tree size (``bench/audit.py --pymerkle``).

Every *complete* subtree hash is written once, when it becomes complete, and addressed as
``(level, index)`` (the subtree over leaves ``[index·2^level, (index+1)·2^level)``). Any RFC
proof or root is a fold over O(log n) such nodes, fetched in one read. Proof generation follows
RFC 9162 §2.1.3.1 (PATH) and §2.1.4.1 (SUBPROOF); verification follows §2.1.3.2 and §2.1.4.2
literally.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence

NodeKey = tuple[int, int]  # (level, index)
NodeReader = Callable[[Iterable[NodeKey]], Mapping[NodeKey, bytes]]

EMPTY_ROOT = hashlib.sha256(b"").digest()  # RFC 9162 §2.1.1: MTH({}) = HASH()


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 §2.1.1: MTH({d0}) = HASH(0x00 ‖ d0); the prefix stops leaf/node confusion."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly smaller than n (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def range_nodes(start: int, end: int) -> list[NodeKey]:
    """Complete subtrees whose right fold is MTH(D[start:end]).

    Valid for the ranges RFC proofs use: ``start`` aligned to the largest chunk, i.e. a left
    child or a right edge ending at the tree size. Chunks follow the bits of the size, highest
    first, because MTH splits at the largest power of two below the size.
    """
    keys: list[NodeKey] = []
    size = end - start
    pos = start
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            assert pos % (1 << level) == 0, "range is not aligned to its largest chunk"
            keys.append((level, pos >> level))
            pos += 1 << level
    return keys


def fold(hashes: Sequence[bytes]) -> bytes:
    """Right fold H(c1, H(c2, … H(c_{m-1}, c_m))) of chunk hashes, highest chunk first."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """RFC 9162 §2.1.3.1 PATH(m, D[n]) as leaf ranges, deepest first."""
    ranges: list[tuple[int, int]] = []
    lo, hi, m = 0, size, index
    while hi - lo > 1:
        k = split_point(hi - lo)
        if m < k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo, m = lo + k, m - k
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """RFC 9162 §2.1.4.1 PROOF(m, D[n]) = SUBPROOF(m, D[n], true) as leaf ranges."""
    if not 0 < first < second:
        return []
    ranges: list[tuple[int, int]] = []
    lo, hi, m, whole = 0, second, first, True
    while True:
        n = hi - lo
        if m == n:
            if not whole:
                ranges.append((lo, hi))
            break
        k = split_point(n)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    ranges.reverse()
    return ranges


def hashes_for(ranges: Sequence[tuple[int, int]], read: NodeReader) -> list[bytes]:
    """Resolve leaf ranges to their MTH with one batched read of complete-subtree nodes."""
    per_range = [range_nodes(a, b) for a, b in ranges]
    wanted = {key for keys in per_range for key in keys}
    found = read(wanted)
    missing = wanted - set(found)
    if missing:
        raise LookupError(f"{len(missing)} tree node(s) missing from the store")
    return [fold([found[key] for key in keys]) for keys in per_range]


def root_from(size: int, read: NodeReader) -> bytes:
    return hashes_for([(0, size)], read)[0] if size else EMPTY_ROOT


def verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does ``path`` prove leaf hash ``leaf`` at ``index`` under ``root``?"""
    if index >= size or index < 0:
        return False
    return root_from_inclusion(leaf, index, size, path) == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: is the tree of size ``second`` an append-only extension of ``first``?"""
    if first < 0 or second < first:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof  # every tree extends the empty tree
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # exact power of two: the old root is itself a node
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


def root_from_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """The root an inclusion path implies (None if the path has the wrong shape)."""
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


class CompactRange:
    """The right edge of a tree: one complete-subtree hash per set bit of its size.

    Appending a leaf merges equal-level neighbours; each merge is a subtree that just became
    complete, which is exactly what the store must write for O(log n) proofs later.
    """

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        self.size = size
        self.nodes: list[tuple[int, int, bytes]] = []
        keys = range_nodes(0, size)
        if len(keys) != len(hashes):
            raise ValueError("compact range needs one hash per set bit of the size")
        for (level, index), h in zip(keys, hashes, strict=True):
            self.nodes.append((level, index, h))

    @staticmethod
    def keys(size: int) -> list[NodeKey]:
        return range_nodes(0, size)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; return every node (leaf included) that became complete."""
        new = [(0, self.size, leaf)]
        self.nodes.append((0, self.size, leaf))
        while len(self.nodes) > 1 and self.nodes[-1][0] == self.nodes[-2][0]:
            level, li, lh = self.nodes[-2]
            _, _, rh = self.nodes[-1]
            del self.nodes[-2:]
            merged = (level + 1, li >> 1, node_hash(lh, rh))
            self.nodes.append(merged)
            new.append(merged)
        self.size += 1
        return new

    def hashes(self) -> list[bytes]:
        """The edge's hashes, largest subtree first (what the store keeps with the head)."""
        return [h for _, _, h in self.nodes]

    def root(self) -> bytes:
        return fold(self.hashes())


class MemoryTree:
    """Every complete subtree of a tree held in memory (used by the offline verifier)."""

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self.levels: list[list[bytes]] = [[]]
        for leaf in leaves:
            self.append(leaf)

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def append(self, leaf: bytes) -> None:
        self.levels[0].append(leaf)
        level, index = 0, len(self.levels[0]) - 1
        while index & 1:
            left, right = self.levels[level][index - 1], self.levels[level][index]
            level, index = level + 1, index >> 1
            if len(self.levels) == level:
                self.levels.append([])
            self.levels[level].append(node_hash(left, right))

    def read(self, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
        out: dict[NodeKey, bytes] = {}
        for level, index in keys:
            if level < len(self.levels) and index < len(self.levels[level]):
                out[(level, index)] = self.levels[level][index]
        return out

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        return hashes_for([(0, size)], self.read)[0] if size else EMPTY_ROOT

    def subtree(self, start: int, end: int) -> bytes:
        return hashes_for([(start, end)], self.read)[0]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return hashes_for(inclusion_ranges(index, size), self.read)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        return hashes_for(consistency_ranges(first, second), self.read)
