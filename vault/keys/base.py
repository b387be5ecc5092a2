"""The key-encryption key (KEK) interface, and the wrapped-key format every provider shares.

A wrapped data key is ``0x01 ‖ kek_version (4 bytes, big-endian) ‖ nonce (12) ‖ AES-256-GCM(key)``,
with the header and a caller-given context (the subject id) as associated data: a wrapped key
copied onto another subject's row fails to unwrap (NIST SP 800-38F's concern, key/context
binding). The version in the header is the Tink-style key id: several KEK versions can be read
at once during a rotation.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from contextlib import suppress
from typing import Protocol, runtime_checkable

from vault.errors import IntegrityError, KeyProviderError

__all__ = ["KeyProvider", "VersionedKeyProvider", "wrapped_version"]

FORMAT = 0x01
_HEADER = struct.Struct(">BI")
NONCE_BYTES = 12
# How long a process trusts its list of KEK versions: another process (``sijill keys rotate``)
# may add or retire one; after this many seconds new wraps use the new current version.
REFRESH_S = 1.0


@runtime_checkable
class KeyProvider(Protocol):
    """Wraps and unwraps data keys under a versioned KEK it never hands out."""

    name: str

    @property
    def current_version(self) -> int: ...

    def versions(self) -> list[int]: ...

    def wrap(self, key: bytes, context: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes: ...

    def add_version(self) -> int: ...

    def retire(self, version: int) -> None: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


def wrapped_version(wrapped: bytes) -> int:
    """The KEK version a wrapped key names in its header."""
    if len(wrapped) < _HEADER.size + NONCE_BYTES + 16:
        raise IntegrityError("wrapped key is truncated")
    fmt, version = _HEADER.unpack_from(wrapped)
    if fmt != FORMAT:
        raise IntegrityError("wrapped key has an unknown format")
    return int(version)


def _aad(header: bytes, context: bytes) -> bytes:
    return b"sijill/kek/v1\x00" + header + context


class VersionedKeyProvider:
    """Framing, version bookkeeping and caching; subclasses supply the KEK operations."""

    name = "abstract"

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._versions: list[int] = []
        self._loaded_at = 0.0

    # -- what a concrete provider implements ------------------------------------------------
    def _list_versions(self) -> list[int]:
        raise NotImplementedError

    def _create_version(self, version: int) -> None:
        raise NotImplementedError

    def _destroy_version(self, version: int) -> None:
        raise NotImplementedError

    def _seal(self, version: int, nonce: bytes, key: bytes, aad: bytes) -> bytes:
        raise NotImplementedError

    def _open(self, version: int, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
        raise NotImplementedError

    # -- the interface ----------------------------------------------------------------------
    def _refresh(self, *, force: bool = False) -> list[int]:
        with self._lock:
            now = time.monotonic()
            if force or not self._versions or now - self._loaded_at > REFRESH_S:
                versions = sorted(self._list_versions())
                if not versions:
                    # First run: the KEK is generated here (DESIGN.md "Data and keys").
                    with suppress(FileExistsError):  # another process created it first
                        self._create_version(1)
                    versions = sorted(self._list_versions())
                self._versions = versions
                self._loaded_at = now
            return self._versions

    @property
    def current_version(self) -> int:
        return self._refresh()[-1]

    def versions(self) -> list[int]:
        return list(self._refresh(force=True))

    def wrap(self, key: bytes, context: bytes) -> bytes:
        version = self.current_version
        header = _HEADER.pack(FORMAT, version)
        nonce = os.urandom(NONCE_BYTES)
        try:
            sealed = self._seal(version, nonce, key, _aad(header, context))
        except KeyError:
            # Retired by another process since our last look: take the newest and retry once.
            version = self._refresh(force=True)[-1]
            header = _HEADER.pack(FORMAT, version)
            sealed = self._seal(version, nonce, key, _aad(header, context))
        return header + nonce + sealed

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        version = wrapped_version(wrapped)
        header = wrapped[: _HEADER.size]
        nonce = wrapped[_HEADER.size : _HEADER.size + NONCE_BYTES]
        sealed = wrapped[_HEADER.size + NONCE_BYTES :]
        try:
            return self._open(version, nonce, sealed, _aad(header, context))
        except KeyError:
            self._refresh(force=True)
            try:
                return self._open(version, nonce, sealed, _aad(header, context))
            except KeyError:
                raise IntegrityError("wrapped key names a KEK version that is retired") from None

    def add_version(self) -> int:
        with self._lock:
            version = self._refresh(force=True)[-1] + 1
            self._create_version(version)
            self._refresh(force=True)
            return version

    def retire(self, version: int) -> None:
        with self._lock:
            versions = self._refresh(force=True)
            if version not in versions:
                raise KeyProviderError("no such KEK version")
            if version == versions[-1]:
                raise KeyProviderError("the current KEK version cannot be retired")
            self._destroy_version(version)
            self._refresh(force=True)

    def ping(self) -> None:
        self._refresh(force=True)

    def close(self) -> None:
        return None
