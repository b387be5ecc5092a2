"""Witness cosignatures in the C2SP ``tlog-cosignature`` format (``cosignature/v1``).

A witness that has checked a checkpoint against the latest one it saw adds a signature line to
the note, as C2SP signed-note allows::

    — <witness name> <base64(key id ‖ timestamp ‖ signature)>

The key id is the first 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x04 ‖ public key), 0x04 being the
cosignature/v1 type; the timestamp is 8 bytes, big-endian Unix seconds; the signature is Ed25519
over ``"cosignature/v1\\ntime <timestamp>\\n"`` followed by the checkpoint body (the note text
above the blank line, final newline included). The verifier key is
``<name>+<hex key id>+<base64(0x04 ‖ public key)>``. Go's sumdb note package, Sigstore's and
Tessera's witnesses read and write exactly this.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from audit.checkpoint import SIG_PREFIX, check_key_name, key_id, parse_verifier_key
from audit.errors import InvalidCheckpoint

COSIGNATURE_TYPE = b"\x04"
_LABEL = "cosignature/v1\ntime "


def cosignature_key_id(name: str, public_key: bytes) -> bytes:
    return key_id(name, public_key, COSIGNATURE_TYPE)


def _message(body: str, timestamp: int) -> bytes:
    return f"{_LABEL}{timestamp}\n{body}".encode()


@dataclass(frozen=True)
class CosignatureVerifier:
    """A witness's public key, as published: ``<name>+<hex key id>+<base64(0x04 ‖ key)>``."""

    name: str
    key_id: bytes
    public_key: Ed25519PublicKey

    @classmethod
    def parse(cls, text: str) -> CosignatureVerifier:
        return cls(*parse_verifier_key(text, COSIGNATURE_TYPE))

    def __str__(self) -> str:
        raw = self.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        encoded = base64.b64encode(COSIGNATURE_TYPE + raw).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def verify(self, note: str) -> int | None:
        """The time (Unix seconds) of this witness's valid cosignature on ``note``, or None if
        the note carries no line by this key. A line by this key that does not verify raises:
        C2SP signed-note rejects a note whose known key's signature fails."""
        body, sep, sigs = note.partition("\n\n")
        if not sep:
            raise InvalidCheckpoint("a note is text, a blank line, then signature lines")
        body += "\n"
        found: int | None = None
        for line in sigs.rstrip("\n").split("\n"):
            name, _, b64 = line.removeprefix(SIG_PREFIX).partition(" ")
            if name != self.name:
                continue
            try:
                blob = base64.b64decode(b64, validate=True)
            except (ValueError, binascii.Error):
                raise InvalidCheckpoint("a cosignature is not base64") from None
            if blob[:4] != self.key_id:
                continue
            if len(blob) != 4 + 8 + 64:
                raise InvalidCheckpoint(f"the cosignature by witness {self.name} is malformed")
            (timestamp,) = struct.unpack(">Q", blob[4:12])
            try:
                self.public_key.verify(blob[12:], _message(body, timestamp))
            except InvalidSignature:
                raise InvalidCheckpoint(
                    f"the cosignature by witness {self.name} does not verify"
                ) from None
            found = timestamp
        return found


class Cosigner:
    """A witness's signing key: cosigns checkpoint bodies it has checked."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        check_key_name(name)
        self.name = name
        self._key = private_key
        raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.verifier = CosignatureVerifier(
            name, cosignature_key_id(name, raw), private_key.public_key()
        )

    def cosign(self, body: str, timestamp: int) -> str:
        """The signature line (with its newline) cosigning ``body`` at ``timestamp``."""
        sig = self._key.sign(_message(body, timestamp))
        blob = self.verifier.key_id + struct.pack(">Q", timestamp) + sig
        return f"{SIG_PREFIX}{self.name} {base64.b64encode(blob).decode()}\n"


def with_signature_lines(note: str, lines: list[str]) -> str:
    """``note`` with ``lines`` (each a whole signature line) added after its own, once each."""
    present = set(note.rstrip("\n").split("\n"))
    extra = [line for line in lines if line.rstrip("\n") not in present]
    return note + "".join(line if line.endswith("\n") else line + "\n" for line in extra)


def count_cosignatures(note: str, witnesses: list[CosignatureVerifier]) -> list[str]:
    """The names of the ``witnesses`` whose valid cosignature ``note`` carries."""
    return [w.name for w in witnesses if w.verify(note) is not None]
