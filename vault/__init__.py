"""The vault: the trusted boundary of Sijill.

Owns: every key (the key-encryption key through a key provider: a file or an HSM over PKCS#11;
per-subject data keys; the root secret behind MACs, blind indexes and tokens), and every byte of
personal data in plaintext. Records are stored encrypted (AES-256-GCM, envelope encryption),
revealed only under a policy :class:`Decision` it verifies, and crypto-shredded on erasure.
RSU households are scored here, since only the vault reads a declaration.

Its modules: ``core`` (the :class:`Vault` facade), ``records`` (reading, decrypting and
writing records, the write lock), ``derive`` (root secret, MACs, blind indexes, tokens),
``envelope`` (the field format and the AEAD and KDF primitives), ``scoring`` (RSU scoring),
``rotation`` (KEK rotation), ``keys`` (key providers), ``tables``, ``schema``, ``decision``.
Each uses the others' public names only; cryptography's hazmat layer is imported by
``envelope`` and ``records`` (and the key providers and decision verifier for their own keys).

May import: nothing of Sijill's other packages but storekit, the SQL plumbing (import-linter
holds this); the standard library, cryptography, python-pkcs11, rfc8785, SQLAlchemy, numpy and
orjson (RSU scoring).

Must never: hand out a key, a nonce or a ciphertext; reveal a field no valid decision released;
put a value into an exception message or a log line; hold the policy layer's signing key.
"""

from vault.core import Vault
from vault.decision import Decision, DecisionVerifier, signing_payload
from vault.errors import (
    DecisionRefused,
    Erased,
    IntegrityError,
    InvalidRecord,
    KeyFilePermissions,
    KeyProviderError,
    UnknownSubject,
    VaultError,
)
from vault.keys import FileKeyProvider, KeyProvider, Pkcs11KeyProvider, check_private_file
from vault.rotation import RotationReport, rotate
from vault.scoring import (
    Contribution,
    EligibilityAsk,
    Explanation,
    ModelSet,
    NotScored,
    ScoredBatch,
    ScoreEvent,
    ScoringModel,
    Vectors,
    feature_vector,
)
from vault.scoring.features import features

__all__ = [
    "Contribution",
    "Decision",
    "DecisionRefused",
    "DecisionVerifier",
    "EligibilityAsk",
    "Erased",
    "Explanation",
    "FileKeyProvider",
    "IntegrityError",
    "InvalidRecord",
    "KeyFilePermissions",
    "KeyProvider",
    "KeyProviderError",
    "ModelSet",
    "NotScored",
    "Pkcs11KeyProvider",
    "RotationReport",
    "ScoreEvent",
    "ScoredBatch",
    "ScoringModel",
    "UnknownSubject",
    "Vault",
    "VaultError",
    "Vectors",
    "check_private_file",
    "feature_vector",
    "features",
    "rotate",
    "signing_payload",
]
