"""The embedded key provider: KEK versions as 32-byte files under ``<data dir>/keys/``.

Files are created with mode 0600 (O_CREAT|O_EXCL, so two first runs cannot overwrite each other)
and the provider refuses to work if any is readable or writable by group or others: a KEK
readable by another account would undo every encryption the vault does.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag

from vault.envelope import Aead, generate_key
from vault.errors import IntegrityError, KeyFilePermissions, KeyProviderError
from vault.keys.base import VersionedKeyProvider

__all__ = ["FileKeyProvider", "check_private_file"]

_NAME = re.compile(r"\Akek-v(\d{1,9})\.key\Z")


def check_private_file(path: Path) -> None:
    """Raise :class:`KeyFilePermissions` if ``path`` is accessible to group or others."""
    mode = path.stat().st_mode
    if stat.S_IMODE(mode) & 0o077:
        raise KeyFilePermissions(
            f"key file {path} has mode {stat.S_IMODE(mode):04o}; it must be 0600 "
            f"(run: chmod 600 {path})"
        )


class FileKeyProvider(VersionedKeyProvider):
    name = "file"

    def __init__(self, directory: Path | str) -> None:
        super().__init__()
        self._keys: dict[int, Aead] = {}
        self._dir = Path(directory)
        try:
            self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise KeyProviderError(
                f"cannot create key directory {self._dir}: {exc.strerror}"
            ) from None
        self._refresh(force=True)  # creates v1 on first run; checks modes now, not at first use

    @property
    def directory(self) -> Path:
        return self._dir

    def _path(self, version: int) -> Path:
        return self._dir / f"kek-v{version}.key"

    def _list_versions(self) -> list[int]:
        versions = []
        for entry in os.scandir(self._dir):
            match = _NAME.match(entry.name)
            if match:
                check_private_file(Path(entry.path))
                versions.append(int(match.group(1)))
        # Forget keys retired by another process: this one must stop using them too.
        for gone in set(self._keys) - set(versions):
            self._keys.pop(gone, None)
        return versions

    def _create_version(self, version: int) -> None:
        path = self._path(version)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, generate_key())
            os.fsync(fd)
        finally:
            os.close(fd)

    def _destroy_version(self, version: int) -> None:
        path = self._path(version)
        # Overwrite before unlinking; on copy-on-write or journaled file systems this is best
        # effort, which is why production deployments use the PKCS#11 provider.
        size = path.stat().st_size
        with path.open("r+b") as fh:
            fh.write(b"\x00" * size)
            fh.flush()
            os.fsync(fh.fileno())
        path.unlink()
        self._keys.pop(version, None)

    def _key(self, version: int) -> Aead:
        key = self._keys.get(version)
        if key is None:
            path = self._path(version)
            if not path.exists():
                raise KeyError(version)
            check_private_file(path)
            raw = path.read_bytes()
            if len(raw) != 32:
                raise KeyProviderError(f"key file {path} is not a 256-bit key")
            key = self._keys[version] = Aead(raw)
        return key

    def _seal(self, version: int, nonce: bytes, key: bytes, aad: bytes) -> bytes:
        return self._key(version).encrypt(nonce, key, aad)

    def _open(self, version: int, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
        try:
            return self._key(version).decrypt(nonce, sealed, aad)
        except InvalidTag:
            raise IntegrityError("wrapped key failed authentication") from None

    def ping(self) -> None:
        super().ping()
        self._key(self.current_version)
