"""Keys the gateway loads at start, and what is built directly on them.

- The key provider (the vault's KEK) the settings name.
- The policy layer's decision-signing key: the vault verifies decisions with the public half;
  ``policies.DecisionIssuer`` signs with the private half, loaded through this same function so
  both sides agree on one file.
- The audit log, signing its checkpoints with its own key.

Light on purpose (the vault and the audit log, no web framework): command-line work such as a
national rescoring opens these in every process it starts.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from audit import AuditLog, NoteSigner
from gateway.settings import Settings, SettingsError
from vault import (
    FileKeyProvider,
    KeyProvider,
    KeyProviderError,
    Pkcs11KeyProvider,
    check_private_file,
)

__all__ = ["build_audit_log", "build_key_provider", "load_or_create_ed25519"]


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


def build_key_provider(settings: Settings) -> KeyProvider:
    """The KEK provider named by SIJILL_KEY_PROVIDER; raises (server refuses to start) on a
    group/world-readable key file or an unreachable token."""
    if settings.key_provider == "pkcs11":
        if not settings.pkcs11_pin:
            raise SettingsError("SIJILL_PKCS11_PIN is required when SIJILL_KEY_PROVIDER=pkcs11")
        return Pkcs11KeyProvider(
            settings.pkcs11_module, settings.pkcs11_token_label, settings.pkcs11_pin
        )
    return FileKeyProvider(settings.data_dir / "keys")


def build_audit_log(settings: Settings, engine: Engine) -> AuditLog:
    """The audit log on ``engine``, signing checkpoints with <data_dir>/keys/audit-signing.pem."""
    # The checkpoint-signing key; its public half is published as the C2SP verifier key.
    key = load_or_create_ed25519(settings.data_dir / "keys" / "audit-signing.pem")
    origin = settings.audit_origin
    assert origin is not None, "Settings fills in audit_origin"
    return AuditLog.for_engine(
        engine,
        NoteSigner(origin, key),
        origin,
        checkpoint_every_entries=settings.checkpoint_every_entries,
        checkpoint_every_seconds=settings.checkpoint_every_seconds,
    )
