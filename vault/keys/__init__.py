"""Key providers: where the key-encryption key lives (a file, or an HSM over PKCS#11)."""

from vault.keys.base import KeyProvider, VersionedKeyProvider, wrapped_version
from vault.keys.file import FileKeyProvider, check_private_file
from vault.keys.pkcs11 import Pkcs11KeyProvider

__all__ = [
    "FileKeyProvider",
    "KeyProvider",
    "Pkcs11KeyProvider",
    "VersionedKeyProvider",
    "check_private_file",
    "wrapped_version",
]
