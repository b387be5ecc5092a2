"""The insider: someone with write access to the audit database, who drops the append-only
triggers, changes entries in the signed part or in the unsigned tail, rebuilds the tree nodes
and head to match, deletes checkpoints, and restarts the gateway on the forged store.

With the signer's memory kept outside the store and one witness, every such change is found by
``verify``, which names the first altered index (or, where the nodes were rebuilt, the span
between the two trusted heads around it) and the cause; and a restarted signer either refuses
to sign or signs only the tree as it truly was, never the forgery."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, create_engine

from audit import (
    AuditLog,
    Checkpoint,
    CheckpointRefused,
    Cosigner,
    Export,
    FileMemory,
    NoteSigner,
    TrustedHead,
    Witness,
    export_lines,
    format_submission,
    open_checkpoint,
    remembered_heads,
    verify,
)
from audit.merkle import MemoryTree
from tests.audit import insider
from tests.audit.conftest import ORIGIN, make_entry

SIZE = 100
EVERY = 4  # entries between checkpoints: the checkpointer's second, here
SIGNED_UP_TO = 92  # the last checkpoint; entries 92..99 are the unsigned tail
TARGETS = {"signed": 13, "tail": 95}


class Deployment:
    """A log with its signer's memory and one witness, as the demo runs it."""

    def __init__(self, engine: Engine, signer: NoteSigner, state: Path, witness_db: Path) -> None:
        self.engine = engine
        self.signer = signer
        self.state = state
        self.cosigner = Cosigner("witness.test", Ed25519PrivateKey.generate())
        self.witness_engine = create_engine(f"sqlite:///{witness_db}")
        self.witness = Witness(self.witness_engine, self.cosigner, {ORIGIN: signer.verifier})
        self.log = self.open()
        self.leaves: list[bytes] = []

    def open(self) -> AuditLog:
        """The log as a (re)started gateway opens it: a new process's memory, the same file."""
        return AuditLog.for_engine(
            self.engine,
            self.signer,
            ORIGIN,
            checkpoint_every_entries=10**9,
            checkpoint_every_seconds=3600,
            memory=FileMemory(self.state, ORIGIN),
        )

    def cosign(self, cp: Checkpoint) -> None:
        latest = self.witness.latest(ORIGIN)
        old = open_checkpoint(latest, self.signer.verifier).tree_size if latest else 0
        proof = self.log.consistency_proof(old, cp.tree_size).proof if 0 < old else []
        line = self.witness.add_checkpoint(format_submission(old, proof, cp.note))
        self.log.add_cosignatures(cp, [(self.cosigner.name, line)])

    def fill(self) -> None:
        for n in range(SIZE):
            receipt = self.log.append(make_entry(n))
            self.leaves.append(receipt.leaf_hash)
            if (n + 1) % EVERY == 0 and n + 1 <= SIGNED_UP_TO:
                self.cosign(self.log.issue_checkpoint())

    def original_root(self, size: int) -> bytes:
        tree = MemoryTree()
        for leaf in self.leaves[:size]:
            tree.append(leaf)
        return tree.root()

    def trusted_heads(self) -> list[TrustedHead]:
        heads = remembered_heads(FileMemory(self.state, ORIGIN))
        note = self.witness.latest(ORIGIN)
        assert note is not None and self.cosigner.verifier.verify(note) is not None
        cp = open_checkpoint(note, self.signer.verifier, ORIGIN)
        label = f"the checkpoint witness {self.cosigner.name} cosigned (size {cp.tree_size})"
        return [*heads, TrustedHead(label, cp.tree_size, cp.root_hash)]

    def verify(self):  # type: ignore[no-untyped-def]
        log = self.open()
        export = Export.from_lines(export_lines(log.storage, ORIGIN, log.verifier_key))
        log.close()
        return verify(
            export,
            verifier_key=str(self.signer.verifier),
            witnesses=[self.cosigner.verifier],
            trusted_heads=self.trusted_heads(),
        )


@pytest.fixture
def deployment(audit_engine: Engine, signer: NoteSigner, tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(audit_engine, signer, tmp_path / "signer-state.json", tmp_path / "w.db")
    d.fill()
    yield d
    d.log.close()
    d.witness_engine.dispose()


def test_an_untouched_witnessed_log_verifies_against_every_head_known_outside(
    deployment: Deployment,
) -> None:
    report = deployment.verify()
    assert report.ok, report.problem
    assert report.tree_size == SIZE
    tail = SIZE - SIGNED_UP_TO
    assert report.problem == (
        f"{tail} entries (from index {SIGNED_UP_TO}) are not yet covered by any checkpoint"
    )


CAUSES = {
    ("edit", "rows"): "does not match its recorded leaf hash",
    ("delete", "rows"): "is missing or out of order",
}

CASES = [
    (kind, mode, where, deleted)
    for kind in ("edit", "delete", "insert", "swap", "truncate")
    for mode in ("rows", "rehash", "rebuild")
    for where in ("signed", "tail")
    for deleted in ((False, True) if mode == "rebuild" else (False,))
]


@pytest.mark.parametrize(("kind", "mode", "where", "deleted"), CASES)
def test_an_insider_rewrite_is_found_at_its_index_and_never_signed(
    deployment: Deployment, kind: str, mode: str, where: str, deleted: bool
) -> None:
    index = TARGETS[where]
    insider.drop_triggers(deployment.engine)
    insider.tamper(deployment.engine, kind, index, rehash=mode != "rows")
    if mode == "rebuild":
        insider.rebuild(deployment.engine)
    if deleted:
        insider.delete_checkpoints(deployment.engine, above=8)
    deployment.log.close()

    report = deployment.verify()
    assert not report.ok
    assert report.first_bad_index is not None, report.problem
    if mode == "rebuild" and where == "signed" and kind != "truncate":
        # The nodes no longer say which leaf changed: the verifier names the span between
        # the two trusted heads around it (one checkpoint interval, or back to the newest
        # checkpoint the insider left in place).
        lowest = 8 if deleted else index - index % EVERY
        assert lowest <= report.first_bad_index <= index, report.problem
        assert f"an entry from index {report.first_bad_index} to " in report.problem
    else:
        assert report.first_bad_index == index, report.problem
    if kind == "truncate":
        assert "no longer holds" in report.problem or "short of" in report.problem
    else:
        cause = CAUSES.get((kind, mode), "differs from what")
        assert cause in report.problem, report.problem

    # The gateway restarted on the forged store: it refuses, or signs only the true tree.
    restarted = deployment.open()
    try:
        restarted.check_store()
        cp = restarted.issue_checkpoint()
    except CheckpointRefused as refusal:
        assert restarted.refused == str(refusal)
    else:
        assert mode != "rebuild", "a rebuilt forgery was signed"
        assert cp.root_hash == deployment.original_root(cp.tree_size)
    finally:
        restarted.close()


def test_a_refusing_log_appends_nothing_more(deployment: Deployment) -> None:
    insider.drop_triggers(deployment.engine)
    insider.tamper(deployment.engine, "edit", TARGETS["signed"], rehash=True)
    insider.rebuild(deployment.engine)
    deployment.log.close()
    restarted = deployment.open()
    with pytest.raises(CheckpointRefused, match="not consistent with"):
        restarted.check_store()
    with pytest.raises(CheckpointRefused):
        restarted.append(make_entry(SIZE))
    with pytest.raises(CheckpointRefused):
        restarted.ping()  # readiness: not ready
    restarted.close()
    assert deployment.open().size() == SIZE  # nothing was appended


def test_a_store_rolled_back_to_an_earlier_backup_is_refused(deployment: Deployment) -> None:
    insider.drop_triggers(deployment.engine)
    insider.tamper(deployment.engine, "truncate", 40, rehash=True)
    insider.rebuild(deployment.engine)
    insider.delete_checkpoints(deployment.engine, above=40)
    deployment.log.close()
    restarted = deployment.open()
    with pytest.raises(CheckpointRefused, match="fewer than the"):
        restarted.issue_checkpoint()
    restarted.close()
