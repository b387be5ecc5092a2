"""The witness (C2SP tlog-witness over HTTP, ``sijill witness serve``) and the log's side of it:
consistent checkpoints are cosigned, rolled-back and forked ones refused, the witness's state
survives its restart, and two processes racing with a fork never both get cosigned."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import (
    SIZE_CONTENT_TYPE,
    AuditLog,
    CosignatureVerifier,
    NoteSigner,
    VerificationFailed,
    format_submission,
    verify_receipt,
)
from audit.merkle import MemoryTree, leaf_hash
from gateway.witnesses import WitnessEndpoint
from gateway.witnessing import WitnessClient
from tests.audit.conftest import ORIGIN, make_entry

SIJILL = str(Path(sys.executable).with_name("sijill"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WitnessProcess:
    """``sijill witness serve`` in its own process, on its own directory and port."""

    def __init__(self, directory: Path, log_key: str) -> None:
        self.directory = directory
        self.log_key = log_key
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        key = subprocess.run(
            [SIJILL, "witness", "key", "--directory", str(directory), "--name", "w1.test"],
            capture_output=True,
            text=True,
            check=True,
        )
        self.key = CosignatureVerifier.parse(key.stdout.strip())
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [SIJILL, "witness", "serve", "--log", self.log_key, "--directory",
             str(self.directory), "--name", "w1.test", "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/latest", params={"origin": ORIGIN}, timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the witness did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def witness(tmp_path: Path, signer: NoteSigner) -> Iterator[WitnessProcess]:
    w = WitnessProcess(tmp_path / "witness", str(signer.verifier))
    w.start()
    yield w
    w.stop()


def _submit(url: str, old: int, proof: list[bytes], note: str) -> httpx.Response:
    return httpx.post(f"{url}/add-checkpoint", content=format_submission(old, proof, note))


def test_consistent_checkpoints_are_cosigned_and_kept_with_the_log(
    log: AuditLog, witness: WitnessProcess
) -> None:
    client = WitnessClient(log, [WitnessEndpoint(witness.url, witness.key)], _no_alarm)
    for n in range(10):
        log.append(make_entry(n))
    first = log.issue_checkpoint()
    assert client.bring_up_to(first) == ["w1.test"]
    for n in range(10, 25):
        log.append(make_entry(n))
    second = log.issue_checkpoint()
    assert client.bring_up_to(second) == ["w1.test"]  # with a consistency proof from 10
    served = log.checkpoint()
    assert served.tree_size == second.tree_size
    assert witness.key.verify(served.note) is not None
    receipt = log.receipt(17)
    entry = verify_receipt(receipt, log.verifier_key, witnesses=[str(witness.key)], min_witnesses=1)
    assert entry.decision_id == "d-17"
    client.close()


def test_a_receipt_without_the_required_cosignature_is_refused(
    log: AuditLog, witness: WitnessProcess
) -> None:
    for n in range(5):
        log.append(make_entry(n))
    log.issue_checkpoint()  # never shown to the witness
    other = Ed25519PrivateKey.generate()
    from audit import Cosigner

    stranger = Cosigner("w1.test", other).verifier  # same name, another key
    with pytest.raises(VerificationFailed, match="cosigned by 0 of the required"):
        verify_receipt(
            log.receipt(3), log.verifier_key, witnesses=[witness.key, stranger], min_witnesses=1
        )


def _no_alarm(problem: str) -> None:
    raise AssertionError(f"unexpected alarm: {problem}")


def _tree(leaves: list[bytes]) -> MemoryTree:
    tree = MemoryTree()
    for leaf in leaves:
        tree.append(leaf)
    return tree


def _leaves(prefix: str, n: int) -> list[bytes]:
    return [leaf_hash(f"{prefix}-{i}".encode()) for i in range(n)]


def test_a_rolled_back_or_forked_checkpoint_is_refused_and_the_state_survives_a_restart(
    signer: NoteSigner, witness: WitnessProcess
) -> None:
    leaves = _leaves("entry", 20)
    tree = _tree(leaves)
    at12 = signer.sign(ORIGIN, 12, tree.root(12), 1)
    assert _submit(witness.url, 0, [], at12.note).status_code == 200
    # A rollback: an older checkpoint of the same log.
    at8 = signer.sign(ORIGIN, 8, tree.root(8), 2)
    rolled = _submit(witness.url, 8, [], at8.note)
    assert rolled.status_code == 409
    assert rolled.headers["content-type"] == SIZE_CONTENT_TYPE
    assert rolled.text == "12\n"
    # A fork: the same size, another history.
    forked = _tree([*leaves[:5], *_leaves("forged", 7)])
    fork12 = signer.sign(ORIGIN, 12, forked.root(12), 3)
    assert _submit(witness.url, 12, [], fork12.note).status_code == 409
    # A fork that grows: its consistency proof cannot lead from the witnessed root.
    fork20 = signer.sign(ORIGIN, 20, _tree([*leaves[:5], *_leaves("forged", 15)]).root(20), 4)
    proof = _tree([*leaves[:5], *_leaves("forged", 15)]).consistency_proof(12, 20)
    assert _submit(witness.url, 12, proof, fork20.note).status_code == 422

    witness.stop()
    witness.start()
    again = _submit(witness.url, 0, [], at8.note)
    assert again.status_code == 409 and again.text == "12\n"  # it remembers 12
    at20 = signer.sign(ORIGIN, 20, tree.root(20), 5)
    good = _submit(witness.url, 12, tree.consistency_proof(12, 20), at20.note)
    assert good.status_code == 200
    assert witness.key.verify(at20.note + good.text) is not None


def test_a_checkpoint_not_signed_by_a_followed_log_is_refused(witness: WitnessProcess) -> None:
    stranger = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
    note = stranger.sign(ORIGIN, 1, leaf_hash(b"x"), 1).note
    assert _submit(witness.url, 0, [], note).status_code == 403
    unknown = NoteSigner("elsewhere.test/log", Ed25519PrivateKey.generate())
    assert (
        _submit(
            witness.url, 0, [], unknown.sign("elsewhere.test/log", 1, leaf_hash(b"x"), 1).note
        ).status_code
        == 404
    )
    assert httpx.post(f"{witness.url}/add-checkpoint", content=b"not a request").status_code == 400


def _race(url: str, key_pem: bytes, fork: str, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """One gateway process: submit its own history's checkpoints from size 6 to 30."""
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert isinstance(key, Ed25519PrivateKey)
    signer = NoteSigner(ORIGIN, key)
    tree = _tree([*_leaves("entry", 5), *_leaves(fork, 25)])
    old = 0
    won = []
    for size in range(6, 31):
        note = signer.sign(ORIGIN, size, tree.root(size), size).note
        for _ in range(3):
            proof = tree.consistency_proof(old, size) if 0 < old < size else []
            reply = _submit(url, old, proof, note)
            if reply.status_code == 409:
                old = int(reply.text)
                if old > size:
                    break
                continue
            if reply.status_code == 200:
                won.append(size)
                old = size
            break
    results.put((fork, won))


def test_two_processes_racing_with_a_fork_never_both_get_cosigned(
    signing_key: Ed25519PrivateKey, witness: WitnessProcess
) -> None:
    pem = signing_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    ctx = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    procs = [ctx.Process(target=_race, args=(witness.url, pem, f, results)) for f in ("a", "b")]
    for p in procs:
        p.start()
    won = dict(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    # Both forks share entries 0..4 only: a cosigned size above 5 on each side would be a
    # fork with the witness's word on both.
    assert won["a"] or won["b"]
    assert not (won["a"] and won["b"]), won


def test_the_witness_process_leaves_its_state_in_its_own_directory(
    witness: WitnessProcess,
) -> None:
    names = {p.name for p in witness.directory.iterdir()}
    assert {"witness-signing.pem", "witness.db"} <= names
    assert all(n.startswith(("witness", ".")) for n in names), names
    assert os.stat(witness.directory / "witness-signing.pem").st_mode & 0o077 == 0


def test_the_gateway_takes_each_checkpoint_to_its_witness_within_seconds(
    tmp_path: Path, migrated_urls: dict[str, str], witness: WitnessProcess
) -> None:
    from fastapi.testclient import TestClient

    from gateway.app import create_app
    from gateway.settings import load_settings

    settings = load_settings(
        data_dir=tmp_path / "data",
        database_url=migrated_urls["main"],
        audit_origin=ORIGIN,
        audit_witnesses=f"{witness.url} {witness.key}",
        checkpoint_every_seconds=0.2,
    )
    settings.prepare_data_dir()
    # The witness follows the log under the key the gateway will sign with.
    from gateway.keys import load_or_create_ed25519

    key = load_or_create_ed25519(settings.data_dir / "keys" / "audit-signing.pem")
    witness.stop()
    witness.log_key = str(NoteSigner(ORIGIN, key).verifier)
    witness.start()
    app = create_app(settings)
    with TestClient(app) as client:
        for n in range(7):
            app.state.services.audit.append(make_entry(n))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            note = client.get("/v1/audit/checkpoint").text
            if note.split("\n")[1] == "8" and witness.key.verify(note) is not None:
                break  # 7 entries and the policy revision the gateway logs at start
            time.sleep(0.1)
        else:
            raise AssertionError(f"no cosigned checkpoint of the whole log: {note}")


def test_verify_receipt_on_the_command_line_requires_the_witnesses_asked_for(
    log: AuditLog, witness: WitnessProcess, tmp_path: Path
) -> None:
    import json

    from typer.testing import CliRunner

    from gateway.cli import app as root_app
    from gateway.cli import register

    if not any(g.name == "audit" for g in root_app.registered_groups):
        register.all(root_app)
    client = WitnessClient(log, [WitnessEndpoint(witness.url, witness.key)], _no_alarm)
    for n in range(6):
        log.append(make_entry(n))
    assert client.bring_up_to(log.issue_checkpoint()) == ["w1.test"]
    client.close()
    receipt = tmp_path / "receipt.json"
    receipt.write_text(json.dumps(log.receipt(2)))
    base = ["audit", "verify-receipt", str(receipt), "--verifier-key", log.verifier_key]
    ok = CliRunner().invoke(
        root_app, [*base, "--witness", str(witness.key), "--min-witnesses", "1"]
    )
    assert ok.exit_code == 0, ok.output
    assert "OK: entry 2" in ok.output and "cosigned by 1+ witness" in ok.output
    from audit import Cosigner

    stranger = str(Cosigner("w2.test", Ed25519PrivateKey.generate()).verifier)
    refused = CliRunner().invoke(root_app, [*base, "--witness", stranger, "--min-witnesses", "1"])
    assert refused.exit_code == 1
    assert "cosigned by 0 of the required witnesses" in refused.output
