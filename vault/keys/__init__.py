"""Key providers: where the key-encryption key lives (a file, or an HSM over PKCS#11).

Owns: wrapping and unwrapping the vault's data keys under the key-encryption key and its
versions (several at once during a rotation). May import: ``vault.envelope``, ``vault.errors``,
python-pkcs11.
Must never: hand the key-encryption key itself to a caller, or hold any personal data.
"""

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
