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

import logging
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from audit import (
    AuditLog,
    CheckpointRefused,
    Cosigner,
    FileMemory,
    HeadMemory,
    LogIdentity,
    Memories,
    NoteSigner,
    SqlMemory,
    SqlStorage,
)
from gateway.settings import Settings, SettingsError
from gateway.witnesses import EMBEDDED_WITNESS, WitnessEndpoint
from vault import (
    FileKeyProvider,
    KeyProvider,
    KeyProviderError,
    Pkcs11KeyProvider,
    check_private_file,
)

__all__ = ["audit_alarm", "build_audit_log", "build_key_provider", "load_or_create_ed25519"]


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


def audit_alarm(problem: str) -> None:
    """The audit signer's alarm: a critical log line (the app also counts it in /metrics)."""
    logging.getLogger("sijill.audit").critical("audit log alarm", extra={"problem": problem})


def build_audit_log(
    settings: Settings, engine: Engine, main_engine: Engine | None = None
) -> AuditLog:
    """The audit log on ``engine``, signing checkpoints with <data_dir>/keys/audit-signing.pem.

    The log's origin and verifier key are recorded in the store when it is first opened and
    read from there afterwards, so the port the server happens to listen on changes nothing.
    The signer remembers what it signed and wrote in <data_dir>/audit/signer-state.json and, given
    ``main_engine``, in the main database (``audit.memory``)."""
    storage = SqlStorage(engine)
    # The checkpoint-signing key; its public half is published as the C2SP verifier key.
    key = load_or_create_ed25519(settings.data_dir / "keys" / "audit-signing.pem")

    def identity() -> LogIdentity:
        try:
            origin, verifier_key = audit_identity(settings, storage.meta(), key)
        except SettingsError as exc:
            raise CheckpointRefused(str(exc)) from None
        storage.init_meta({"origin": origin, "verifier_key": verifier_key})
        memories: list[HeadMemory] = [
            FileMemory(settings.data_dir / "audit" / "signer-state.json", origin)
        ]
        if main_engine is not None:
            memories.append(SqlMemory(main_engine, origin))
        return LogIdentity(NoteSigner(origin, key), origin, Memories(memories))

    return AuditLog(
        storage,
        None,
        None,
        identity=identity,
        checkpoint_every_entries=settings.checkpoint_every_entries,
        checkpoint_every_seconds=settings.checkpoint_every_seconds,
        alarm=audit_alarm,
        witnesses_expected=len(all_witnesses(settings)),
    )


def audit_identity(
    settings: Settings, recorded: dict[str, str], key: Ed25519PrivateKey
) -> tuple[str, str]:
    """The log's origin and verifier key: those the store recorded when the log was initialised,
    which the settings and the signing key must agree with (:class:`SettingsError` otherwise);
    for a new log, SIJILL_AUDIT_ORIGIN or the default."""
    origin = recorded.get("origin") or settings.audit_origin or settings.default_audit_origin
    if settings.audit_origin and settings.audit_origin != origin:
        raise SettingsError(
            f"SIJILL_AUDIT_ORIGIN is {settings.audit_origin!r} but this audit log was "
            f"initialised as {origin!r}; a log's origin never changes (unset the variable)"
        )
    verifier_key = str(NoteSigner(origin, key).verifier)
    if recorded.get("verifier_key", verifier_key) != verifier_key:
        raise SettingsError(
            "the audit signing key in the data directory is not the one this audit log was "
            "initialised with; start with that key (or the data directory that holds it)"
        )
    return origin, verifier_key


def embedded_witness(settings: Settings) -> Cosigner:
    """The demo's own witness key (``SIJILL_EMBEDDED_WITNESS``), in <data dir>/witness."""
    key = load_or_create_ed25519(settings.data_dir / "witness" / "witness-signing.pem")
    return Cosigner(EMBEDDED_WITNESS, key)


def all_witnesses(settings: Settings) -> list[WitnessEndpoint]:
    """The witnesses the log submits to: SIJILL_AUDIT_WITNESSES, and the demo's own."""
    endpoints = settings.witness_endpoints
    if settings.embedded_witness:
        cosigner = embedded_witness(settings)
        endpoints.append(WitnessEndpoint(f"{settings.issuer}/witness", cosigner.verifier))
    return endpoints
