"""Key files the gateway itself loads at start: the policy layer's decision-signing key.

The vault verifies decisions with the public half; ``policies.DecisionIssuer`` signs with the
private half, loaded through this same function so both sides agree on one file.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vault import KeyProviderError, check_private_file

__all__ = ["load_or_create_ed25519"]


def load_or_create_ed25519(path: Path) -> Ed25519PrivateKey:
    """Load the Ed25519 key at ``path`` (PKCS#8 PEM), creating it mode 0600 on first run.

    Raises :class:`vault.KeyFilePermissions` if the file is readable by group or others: the
    server refuses to start rather than sign with a key others may have copied.
    """
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # Written under a private name, then linked into place: the file appears complete or
        # not at all. (Created in place, a worker starting beside us could read it empty.)
        partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
                fh.flush()
                os.fsync(fh.fileno())
            os.link(partial, path)
        except FileExistsError:
            pass  # another worker created it first; load theirs below
        finally:
            os.unlink(partial)
    check_private_file(path)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise KeyProviderError(f"{path} does not hold an Ed25519 private key")
    return loaded
