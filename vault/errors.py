"""The vault's errors. Messages never carry personal data, key material or ciphertext."""

from __future__ import annotations

__all__ = [
    "DecisionRefused",
    "Erased",
    "IntegrityError",
    "InvalidRecord",
    "KeyFilePermissions",
    "KeyProviderError",
    "UnknownSubject",
    "VaultError",
]


class VaultError(Exception):
    """Base of every error the vault raises."""


class InvalidRecord(VaultError):
    """A record does not match vault/schema.py (unknown field, wrong type, oversized); nothing
    was stored."""


class IntegrityError(VaultError):
    """A ciphertext or wrapped key failed authentication: tampered with, moved to another record
    or field, or under a key that no longer exists. Never answered with wrong plaintext."""


class Erased(VaultError):
    """The subject's data key was destroyed (crypto-shredded); its data is gone for good."""


class DecisionRefused(VaultError):
    """The decision is forged, expired, about another subject, or otherwise unusable."""


class UnknownSubject(VaultError):
    """No record exists for this subject."""


class KeyProviderError(VaultError):
    """The key provider is unreachable or misconfigured."""


class KeyFilePermissions(KeyProviderError):
    """A key file is readable by group or others; the vault refuses to start."""
