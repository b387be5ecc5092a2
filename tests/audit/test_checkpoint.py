"""Checkpoints in the C2SP tlog-checkpoint / signed-note format, checked independently of
audit.checkpoint: the test parses the verifier key and the note itself per the C2SP spec."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from audit import InvalidCheckpoint, NoteSigner, NoteVerifier, open_checkpoint

ORIGIN = "sijill.example/audit"
ROOT = hashlib.sha256(b"some root").digest()


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def test_note_has_origin_size_base64_root_timestamp_blank_line_and_em_dash_signature(
    key: Ed25519PrivateKey,
) -> None:
    cp = NoteSigner(ORIGIN, key).sign(ORIGIN, 1234, ROOT, 1_795_946_400_000_000_000)
    lines = cp.note.split("\n")
    assert lines[:5] == [
        ORIGIN,
        "1234",
        base64.b64encode(ROOT).decode(),
        "timestamp 1795946400000000000",
        "",
    ]
    assert lines[5].startswith(f"\u2014 {ORIGIN} ")
    assert lines[6:] == [""]  # the note ends with a newline
    assert cp.tree_size == 1234 and cp.root_hash == ROOT


def test_signature_verifies_with_cryptography_from_the_verifier_key_string(
    key: Ed25519PrivateKey,
) -> None:
    signer = NoteSigner(ORIGIN, key)
    cp = signer.sign(ORIGIN, 7, ROOT, None)
    # C2SP signed-note: <name>+<hex key id>+<base64(0x01 || 32-byte Ed25519 key)>.
    name, hex_id, b64 = str(signer.verifier).split("+", 2)
    raw = base64.b64decode(b64)
    assert name == ORIGIN and raw[0] == 0x01 and len(raw) == 33
    pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert raw[1:] == pub
    expected_id = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + pub).digest()[:4]
    assert bytes.fromhex(hex_id) == expected_id
    body, _, sigs = cp.note.partition("\n\n")
    sig_name, sig_b64 = sigs.removeprefix("\u2014 ").strip().split(" ")
    blob = base64.b64decode(sig_b64)
    assert sig_name == ORIGIN and blob[:4] == expected_id
    # Raises InvalidSignature if the signed message were anything but the body + newline.
    Ed25519PublicKey.from_public_bytes(raw[1:]).verify(blob[4:], (body + "\n").encode())


def test_open_checkpoint_round_trips(key: Ed25519PrivateKey) -> None:
    signer = NoteSigner(ORIGIN, key)
    cp = signer.sign(ORIGIN, 42, ROOT, 99)
    opened = open_checkpoint(cp.note, str(signer.verifier), ORIGIN)
    assert (opened.origin, opened.tree_size, opened.root_hash, opened.timestamp_ns) == (
        ORIGIN,
        42,
        ROOT,
        99,
    )


def test_a_changed_size_or_root_breaks_the_signature(key: Ed25519PrivateKey) -> None:
    signer = NoteSigner(ORIGIN, key)
    note = signer.sign(ORIGIN, 42, ROOT, None).note
    with pytest.raises(InvalidCheckpoint, match="does not verify"):
        open_checkpoint(note.replace("\n42\n", "\n43\n"), signer.verifier)
    other_root = base64.b64encode(hashlib.sha256(b"x").digest()).decode()
    with pytest.raises(InvalidCheckpoint, match="does not verify"):
        open_checkpoint(note.replace(base64.b64encode(ROOT).decode(), other_root), signer.verifier)


def test_a_note_signed_by_another_key_is_refused(key: Ed25519PrivateKey) -> None:
    forged = NoteSigner(ORIGIN, Ed25519PrivateKey.generate()).sign(ORIGIN, 1, ROOT, None)
    with pytest.raises(InvalidCheckpoint, match="no signature by the trusted key"):
        open_checkpoint(forged.note, NoteSigner(ORIGIN, key).verifier)


def test_a_checkpoint_of_another_log_is_refused(key: Ed25519PrivateKey) -> None:
    signer = NoteSigner(ORIGIN, key)
    with pytest.raises(InvalidCheckpoint, match="origin"):
        open_checkpoint(signer.sign(ORIGIN, 1, ROOT, None).note, signer.verifier, "other/log")


def test_witness_cosignatures_by_unknown_keys_are_ignored(key: Ed25519PrivateKey) -> None:
    signer = NoteSigner(ORIGIN, key)
    witness = NoteSigner("witness.example", Ed25519PrivateKey.generate())
    note = signer.sign(ORIGIN, 5, ROOT, None).note
    cosig = witness.sign(ORIGIN, 5, ROOT, None).note.split("\n\n", 1)[1]
    assert open_checkpoint(note + cosig, signer.verifier).tree_size == 5


def test_verifier_key_with_a_wrong_key_id_is_rejected(key: Ed25519PrivateKey) -> None:
    name, _, b64 = str(NoteSigner(ORIGIN, key).verifier).split("+", 2)
    with pytest.raises(InvalidCheckpoint, match="key id"):
        NoteVerifier.parse(f"{name}+00000000+{b64}")
