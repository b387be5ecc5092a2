"""The authorization server's signing keys: ES256 key pairs in ``<data_dir>/keys``.

Each key is ``oauth-signing-<kid>.pem`` (PKCS#8, mode 0600); the ``kid`` starts with the UTC
time of creation, so sorting the names orders the keys by age. The newest signs; the newest
two are published in the JWKS, so a token signed just before a rotation still verifies
until it expires (access tokens live five minutes; rotate no more often than that).

Every worker process re-reads the directory at most every ``refresh_s`` seconds and at once when
it meets a ``kid`` it does not know, so a rotation done by ``sijill`` in another process is
picked up without a restart.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from identity.oauth.jose import public_jwk

_PREFIX = "oauth-signing-"
PUBLISHED = 2  # current + previous


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: ec.EllipticCurvePrivateKey

    @property
    def public_jwk(self) -> dict[str, Any]:
        jwk = public_jwk(self.private_key.public_key())
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "ES256"}


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


class SigningKeys:
    """File-backed ES256 signing keys with rotation and overlap."""

    def __init__(self, directory: Path, *, refresh_s: float = 30.0) -> None:
        self._dir = directory
        self._refresh_s = refresh_s
        self._lock = threading.Lock()
        self._keys: list[SigningKey] = []
        self._loaded_at = 0.0

    def _load(self) -> None:
        keys = []
        for path in sorted(self._dir.glob(f"{_PREFIX}*.pem"), reverse=True)[:PUBLISHED]:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if isinstance(key, ec.EllipticCurvePrivateKey):
                keys.append(SigningKey(path.stem.removeprefix(_PREFIX), key))
        self._keys = keys
        self._loaded_at = time.monotonic()

    def _current_keys(self, *, force: bool = False) -> list[SigningKey]:
        with self._lock:
            stale = time.monotonic() - self._loaded_at > self._refresh_s
            if force or stale or not self._keys:
                self._load()
            if not self._keys:
                self._create()
                self._load()
            return self._keys

    def _create(self) -> SigningKey:
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        ns = time.time_ns()
        # Sortable by creation to the nanosecond, then a random suffix against collisions.
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(ns // 1_000_000_000))
        kid = f"{stamp}.{ns % 1_000_000_000:09d}Z-{secrets.token_hex(4)}"
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(self._dir / f"{_PREFIX}{kid}.pem", pem)
        return SigningKey(kid, key)

    def rotate(self) -> SigningKey:
        """Create a new current key; the old current one stays published as the previous."""
        with self._lock:
            key = self._create()
            self._load()
            return key

    def current(self) -> SigningKey:
        return self._current_keys()[0]

    def find(self, kid: str) -> SigningKey | None:
        for key in self._current_keys():
            if key.kid == kid:
                return key
        # Unknown kid: perhaps another process rotated; look once more, then give up.
        for key in self._current_keys(force=True):
            if key.kid == kid:
                return key
        return None

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk for k in self._current_keys()]}
