"""TOTP secrets at rest: AES-256-GCM under a key file in ``<data_dir>/keys`` (mode 0600).

A copy of the ``main`` database alone then yields no second factor. The associated data binds
each ciphertext to its account (``citizen:<idcs>``, ``user:<name>``), so a ciphertext moved to
another row fails to decrypt instead of letting one account's code open another.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"


def key_file(path: Path) -> bytes:
    """The 256-bit key in ``path``, made (mode 0600) by whichever worker comes first."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another worker created it first
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(AESGCM.generate_key(bit_length=256))
    return path.read_bytes()


class SecretBox:
    def __init__(self, key_file_path: Path) -> None:
        self._aead = AESGCM(key_file(key_file_path))

    def seal(self, plaintext: str, account: str) -> bytes:
        nonce = secrets.token_bytes(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), account.encode())

    def open(self, sealed: bytes, account: str) -> str:
        if sealed[:1] != _VERSION:
            raise ValueError("unknown secret format")
        nonce, body = sealed[1:13], sealed[13:]
        return self._aead.decrypt(nonce, body, account.encode()).decode()
