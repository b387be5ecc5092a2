"""Signed checkpoints in the C2SP ``tlog-checkpoint`` / ``signed-note`` formats.

A checkpoint is the text::

    <origin>
    <tree size, decimal>
    <base64 root hash>
    [extension lines, here ``timestamp <unix ns>``]

followed by a blank line and one signature line per signer, ``— <name> <base64(key id ‖ sig)>``
(C2SP signed-note). The signature is Ed25519 over the text above the blank line (newline
included). The key id is the first 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key), 0x01
being the Ed25519 signature type; the verifier key is ``<name>+<hex key id>+<base64(0x01 ‖ key)>``.
This is the same format Go's sumdb, Tessera and Rekor v2 publish, so their tooling reads ours.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from audit.errors import InvalidCheckpoint

ED25519_TYPE = b"\x01"
SIG_PREFIX = "\u2014 "  # EM DASH, then a space (C2SP signed-note)
TIMESTAMP = "timestamp "


def check_key_name(name: str) -> None:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise InvalidCheckpoint("a key name is non-empty and has no spaces and no '+'")


def key_id(name: str, public_key: bytes, key_type: bytes = ED25519_TYPE) -> bytes:
    """C2SP signed-note key id: SHA-256(name ‖ 0x0A ‖ type ‖ public key), first 4 bytes."""
    return hashlib.sha256(name.encode() + b"\n" + key_type + public_key).digest()[:4]


def parse_verifier_key(text: str, key_type: bytes) -> tuple[str, bytes, Ed25519PublicKey]:
    """``<name>+<hex key id>+<base64(type ‖ Ed25519 key)>`` of the given signature type, its
    key id checked against its name and key: (name, key id, public key)."""
    parts = text.strip().split("+", 2)  # base64 may itself contain "+"
    if len(parts) != 3:
        raise InvalidCheckpoint("a verifier key reads <name>+<hex key id>+<base64 key>")
    name, hex_id, b64 = parts
    check_key_name(name)
    try:
        kid = bytes.fromhex(hex_id)
        raw = base64.b64decode(b64, validate=True)
    except (ValueError, binascii.Error):
        raise InvalidCheckpoint("verifier key id or key is not hex/base64") from None
    if len(kid) != 4 or len(raw) != 33 or raw[:1] != key_type:
        raise InvalidCheckpoint(f"verifier key is not an Ed25519 key of type 0x{key_type.hex()}")
    if key_id(name, raw[1:], key_type) != kid:
        raise InvalidCheckpoint("verifier key id does not match its name and key")
    return name, kid, Ed25519PublicKey.from_public_bytes(raw[1:])


def verifier_key(name: str, public_key: Ed25519PublicKey) -> str:
    check_key_name(name)
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return f"{name}+{key_id(name, raw).hex()}+{base64.b64encode(ED25519_TYPE + raw).decode()}"


@dataclass(frozen=True)
class NoteVerifier:
    name: str
    key_id: bytes
    public_key: Ed25519PublicKey

    @classmethod
    def parse(cls, text: str) -> NoteVerifier:
        """Parse a verifier key string; its key id must match its name and key."""
        return cls(*parse_verifier_key(text, ED25519_TYPE))

    def __str__(self) -> str:
        return verifier_key(self.name, self.public_key)


@dataclass(frozen=True)
class Checkpoint:
    """A verified (or freshly signed) checkpoint and the exact note text that carries it."""

    origin: str
    tree_size: int
    root_hash: bytes
    timestamp_ns: int | None
    note: str

    def body(self) -> str:
        return checkpoint_body(self.origin, self.tree_size, self.root_hash, self.timestamp_ns)


def checkpoint_body(origin: str, tree_size: int, root_hash: bytes, timestamp_ns: int | None) -> str:
    if not origin or "\n" in origin:
        raise InvalidCheckpoint("origin must be one non-empty line")
    lines = [origin, str(tree_size), base64.b64encode(root_hash).decode()]
    if timestamp_ns is not None:
        lines.append(f"{TIMESTAMP}{timestamp_ns}")
    return "\n".join(lines) + "\n"


class NoteSigner:
    """Signs checkpoints with an Ed25519 key under a note key name (the log's origin)."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        check_key_name(name)
        self.name = name
        self._key = private_key
        raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = key_id(name, raw)
        self.verifier = NoteVerifier(name, self.key_id, private_key.public_key())

    def sign(
        self, origin: str, tree_size: int, root_hash: bytes, timestamp_ns: int | None
    ) -> Checkpoint:
        body = checkpoint_body(origin, tree_size, root_hash, timestamp_ns)
        sig = self._key.sign(body.encode())
        line = f"{SIG_PREFIX}{self.name} {base64.b64encode(self.key_id + sig).decode()}\n"
        return Checkpoint(origin, tree_size, root_hash, timestamp_ns, body + "\n" + line)


def open_checkpoint(
    note: str, verifier: NoteVerifier | str, origin: str | None = None
) -> Checkpoint:
    """Verify a checkpoint note's signature by ``verifier`` and parse it.

    Signature lines from other keys are ignored (C2SP signed-note: witnesses may cosign), but
    at least one line must be by ``verifier`` and valid.
    """
    if isinstance(verifier, str):
        verifier = NoteVerifier.parse(verifier)
    body, sep, sigs = note.partition("\n\n")
    if not sep or not sigs.endswith("\n"):
        raise InvalidCheckpoint("a note is text, a blank line, then signature lines")
    body += "\n"
    valid = False
    for line in sigs[:-1].split("\n"):
        if not line.startswith(SIG_PREFIX):
            raise InvalidCheckpoint("a signature line starts with an em dash and a space")
        name, _, b64 = line[len(SIG_PREFIX) :].partition(" ")
        try:
            blob = base64.b64decode(b64, validate=True)
        except (ValueError, binascii.Error):
            raise InvalidCheckpoint("a signature is not base64") from None
        if name != verifier.name or blob[:4] != verifier.key_id:
            continue
        try:
            verifier.public_key.verify(blob[4:], body.encode())
        except InvalidSignature:
            raise InvalidCheckpoint("the checkpoint signature does not verify") from None
        valid = True
    if not valid:
        raise InvalidCheckpoint("no signature by the trusted key on this checkpoint")
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise InvalidCheckpoint("a checkpoint has an origin, a size and a root hash")
    if origin is not None and lines[0] != origin:
        raise InvalidCheckpoint("the checkpoint is for another log (origin differs)")
    if not lines[1].isdigit() or (lines[1] != "0" and lines[1].startswith("0")):
        raise InvalidCheckpoint("the tree size is not a decimal number")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except (ValueError, binascii.Error):
        raise InvalidCheckpoint("the root hash is not base64") from None
    if len(root) != 32:
        raise InvalidCheckpoint("the root hash is not 32 bytes")
    timestamp: int | None = None
    for ext in lines[3:]:
        if ext.startswith(TIMESTAMP) and ext[len(TIMESTAMP) :].isdigit():
            timestamp = int(ext[len(TIMESTAMP) :])
    return Checkpoint(lines[0], int(lines[1]), root, timestamp, note)
