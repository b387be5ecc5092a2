"""RFC 6962 reference vectors, as published with the Certificate Transparency / Trillian
implementations (transparency-dev/merkle ``testonly`` and ``log_verifier_test.go``).

Every expected hash below is copied from those published tables, never computed here.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from pymerkle import InmemoryTree
from sqlalchemy import Engine

from audit import AuditLog, NoteSigner, SqlStorage
from audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MemoryTree,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)

LEAF_INPUTS = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = {  # tree size -> root (RootHashes())
    0: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
NODE_HASHES = [  # level -> index -> hash of that complete subtree (NodeHashes())
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]
# (leaf index, tree size, audit path); the published table counts leaves from 1.
INCLUSION = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        2,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]


def hexes(hashes: list[bytes]) -> list[str]:
    return [h.hex() for h in hashes]


@pytest.fixture
def tree() -> MemoryTree:
    return MemoryTree(leaf_hash(d) for d in LEAF_INPUTS)


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == ROOTS[0]
    assert MemoryTree().root().hex() == ROOTS[0]


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_of_sizes_1_to_8_match_the_published_roots(tree: MemoryTree, size: int) -> None:
    assert tree.root(size).hex() == ROOTS[size]


def test_every_complete_subtree_matches_the_published_node_hashes(tree: MemoryTree) -> None:
    assert [[h.hex() for h in level] for level in tree.levels] == NODE_HASHES


@pytest.mark.parametrize(("leaf", "size", "path"), INCLUSION)
def test_inclusion_proofs_match_and_verify(
    tree: MemoryTree, leaf: int, size: int, path: list[str]
) -> None:
    index = leaf - 1
    assert hexes(tree.inclusion_proof(index, size)) == path
    proof = [bytes.fromhex(h) for h in path]
    leaf_h = bytes.fromhex(NODE_HASHES[0][index])
    root = bytes.fromhex(ROOTS[size])
    assert verify_inclusion(leaf_h, index, size, proof, root)
    assert not verify_inclusion(leaf_h, index, size, proof, bytes.fromhex(ROOTS[size - 1]))
    if size > 1:
        assert not verify_inclusion(leaf_h, (index + 1) % size, size, proof, root)


@pytest.mark.parametrize(("first", "second", "path"), CONSISTENCY)
def test_consistency_proofs_match_and_verify(
    tree: MemoryTree, first: int, second: int, path: list[str]
) -> None:
    assert hexes(tree.consistency_proof(first, second)) == path
    proof = [bytes.fromhex(h) for h in path]
    r1, r2 = bytes.fromhex(ROOTS[first]), bytes.fromhex(ROOTS[second])
    assert verify_consistency(first, second, r1, r2, proof)
    if first != second:
        assert not verify_consistency(first, second, r2, r1, proof)
        assert not verify_consistency(first, second, r1, r2, proof[:-1])


def test_the_database_backed_tree_serves_the_reference_proofs(
    audit_engine: Engine, request: pytest.FixtureRequest
) -> None:
    """Same vectors through the stored complete-subtree nodes (one batched read a proof)."""
    storage = SqlStorage(audit_engine)
    frontier = CompactRange()
    with storage.sequencer() as seq:
        nodes = [n for d in LEAF_INPUTS for n in frontier.append(leaf_hash(d))]
        seq.write([], nodes, frontier.size, frontier.root(), frontier.hashes(), None)
    log = AuditLog(storage, NoteSigner("t", Ed25519PrivateKey.generate()), "t")
    request.addfinalizer(log.close)
    for size in range(1, 9):
        assert log.root(size).hex() == ROOTS[size]
    for leaf, size, path in INCLUSION:
        proof = log.inclusion_proof(leaf - 1, size)
        assert hexes(proof.audit_path) == path
        assert proof.leaf_hash.hex() == NODE_HASHES[0][leaf - 1]
    for first, second, path in CONSISTENCY:
        assert hexes(log.consistency_proof(first, second).proof) == path


@settings(max_examples=60, deadline=None)
@given(leaves=st.lists(st.binary(max_size=8), min_size=1, max_size=200), data=st.data())
def test_proofs_verify_for_random_sizes_and_roots_agree_with_pymerkle(
    leaves: list[bytes], data: st.DataObject
) -> None:
    tree = MemoryTree(leaf_hash(d) for d in leaves)
    oracle = InmemoryTree(algorithm="sha256")  # independent RFC 6962 implementation
    for d in leaves:
        oracle.append_entry(d)
    size = data.draw(st.integers(1, len(leaves)))
    index = data.draw(st.integers(0, size - 1))
    first = data.draw(st.integers(0, size))
    root = tree.root(size)
    assert root == oracle.get_root(size)
    assert verify_inclusion(
        leaf_hash(leaves[index]), index, size, tree.inclusion_proof(index, size), root
    )
    assert verify_consistency(
        first, size, tree.root(first), root, tree.consistency_proof(first, size)
    )
