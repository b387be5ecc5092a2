"""Field encryption under a subject's data key: AES-256-GCM with a Tink-style key-id header.

A ciphertext is ``0x01 ‖ key_id (4 bytes, big-endian) ‖ nonce (12) ‖ ciphertext ‖ tag (16)``.
Its associated data binds the subject id, the field name and the header (so the key version):
a ciphertext copied onto another record or field, or one byte flipped anywhere, fails
authentication and is reported as :class:`vault.IntegrityError`, never as wrong plaintext.
Random 96-bit nonces are safe here: a data key encrypts one person's few fields, far below the
2^32 messages NIST SP 800-38D §8.3 allows per key.
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vault.errors import IntegrityError

__all__ = [
    "Aead",
    "decode_value",
    "decrypt_field",
    "derive_key",
    "encode_value",
    "encrypt_field",
    "encrypt_record",
    "generate_key",
    "key_id_of",
]

# AES-256-GCM under one key: a subject's data key, or a KEK version (vault.keys.file).
Aead = AESGCM

FORMAT = 0x01
_HEADER = struct.Struct(">BI")
_MIN_LEN = _HEADER.size + 12 + 16
# Header and nonce: a new encryption of a field (random nonce) differs from the old one here.
NONCE_END = _HEADER.size + 12


_AAD_LABEL = b"sijill/field/v1"
_AAD_LENGTHS = struct.Struct(">HH")


def _aad(subject: str, field: str, header: bytes) -> bytes:
    s = subject.encode()
    f = field.encode()
    # Length-prefixed, so ("ab", "c") and ("a", "bc") give different associated data.
    return _AAD_LABEL + _AAD_LENGTHS.pack(len(s), len(f)) + s + f + header


@functools.lru_cache(maxsize=1024)
def _field_aad_tail(subject_len: int, field: str, header: bytes) -> tuple[bytes, bytes]:
    """The parts of :func:`_aad` that do not depend on the subject's characters: computed
    once per field name (and key version), not once per field of every record."""
    f = field.encode()
    return _AAD_LABEL + _AAD_LENGTHS.pack(subject_len, len(f)), f + header


def encode_value(value: object) -> bytes:
    """Typed plaintext: ``s`` + UTF-8 for text, ``i`` + decimal for integers, ``b`` + the
    bytes themselves (the vault's own derived values, vault.scoring's feature vectors)."""
    if isinstance(value, str):
        return b"s" + value.encode()
    if isinstance(value, int) and not isinstance(value, bool):
        return b"i" + str(value).encode()
    if isinstance(value, bytes):
        return b"b" + value
    raise TypeError("the vault stores text, integers and bytes only")


def decode_value(data: bytes) -> object:
    tag, body = data[:1], data[1:]
    if tag == b"s":
        return body.decode()
    if tag == b"i":
        return int(body)
    if tag == b"b":
        return body
    raise IntegrityError("field plaintext has an unknown type tag")


def encrypt_field(aead: AESGCM, key_id: int, subject: str, field: str, plaintext: bytes) -> bytes:
    header = _HEADER.pack(FORMAT, key_id)
    nonce = os.urandom(12)
    return header + nonce + aead.encrypt(nonce, plaintext, _aad(subject, field, header))


def encrypt_record(
    aead: AESGCM, key_id: int, subject: str, values: Mapping[str, object]
) -> list[tuple[str, str, bytes]]:
    """(subject, field, ciphertext) for each of a record's values: the format of
    :func:`encrypt_field`, with the record's nonces drawn from the OS in one call."""
    header = _HEADER.pack(FORMAT, key_id)
    nonces = os.urandom(12 * len(values))
    encrypt = aead.encrypt
    s = subject.encode()
    out = []
    start = 0
    for field, value in values.items():
        nonce = nonces[start : start + 12]
        start += 12
        head, tail = _field_aad_tail(len(s), field, header)
        sealed = encrypt(nonce, encode_value(value), head + s + tail)
        out.append((subject, field, header + nonce + sealed))
    return out


def key_id_of(ciphertext: bytes) -> int:
    if len(ciphertext) < _MIN_LEN:
        raise IntegrityError("field ciphertext is truncated")
    fmt, key_id = _HEADER.unpack_from(ciphertext)
    if fmt != FORMAT:
        raise IntegrityError("field ciphertext has an unknown format")
    return int(key_id)


def decrypt_field(aead: AESGCM, subject: str, field: str, ciphertext: bytes) -> bytes:
    header = ciphertext[: _HEADER.size]
    try:
        return aead.decrypt(
            ciphertext[_HEADER.size : _HEADER.size + 12],
            ciphertext[_HEADER.size + 12 :],
            _aad(subject, field, header),
        )
    except InvalidTag:
        raise IntegrityError("field ciphertext failed authentication") from None


def derive_key(secret: bytes, label: str) -> bytes:
    """A 256-bit key for ``label`` from the vault's root ``secret`` (HKDF-SHA-256, RFC 5869):
    different labels give unrelated keys (§3.2), and none of them reveals the secret."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"sijill/vault/v1", info=label.encode()
    ).derive(secret)


def generate_key() -> bytes:
    """A fresh random 256-bit AES key."""
    return AESGCM.generate_key(bit_length=256)
