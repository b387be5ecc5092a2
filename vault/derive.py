"""Keyed derivations: the root secret, MACs, subject tags, blind indexes and tokens.

Every keyed value the vault hands out is an HMAC-SHA-256 under a key derived from one root
secret (HKDF, RFC 5869; :func:`vault.envelope.derive_key`), itself stored only wrapped by the
KEK (``vault_secrets``). A label names each use, so two uses never share a key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets as pysecrets
import threading
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import insert, select

from vault import tables as t
from vault.envelope import derive_key
from vault.errors import IntegrityError, VaultError
from vault.keys.base import wrapped_version
from vault.normalise import normalise_identifier, normalise_text
from vault.records import Records

__all__ = ["Derivations", "new_token"]

_LABEL = re.compile(r"\A[A-Za-z0-9_.:\-]{1,64}\Z")
# Blind-index kinds whose values are document numbers rather than names.
_IDENTIFIER_KINDS = frozenset({"cnie", "idcs", "phone"})
_ROOT = "root"
ROOT_CONTEXT = b"secret\x00root"


def _sha256(data: bytes = b"") -> Any:
    return hashlib.sha256(data)


def new_token() -> str:
    """An opaque random token (192 bits, URL-safe); links to nothing by construction."""
    return pysecrets.token_urlsafe(24)


class Derivations:
    """The keyed derivations of one vault store (its root secret, loaded once a process)."""

    def __init__(self, records: Records) -> None:
        self._records = records
        self._root_lock = threading.Lock()
        self._root: bytes | None = None
        self._derived: dict[str, bytes] = {}
        self._hmacs: dict[str, hmac.HMAC] = {}

    def root_secret(self) -> bytes:
        """The root secret, loaded (or created, on a new store) on first use. A caller about
        to open a write transaction loads it first: creating it inside one would wait on its
        own SQLite write lock."""
        if self._root is not None:
            return self._root
        with self._root_lock:
            if self._root is None:
                self._root = self._load_or_create_root()
            return self._root

    def _read_wrapped(self) -> Any:
        with self._records.engine.connect() as conn:
            return conn.execute(
                select(t.secrets.c.wrapped).where(t.secrets.c.name == _ROOT)
            ).scalar_one_or_none()

    def _load_or_create_root(self) -> bytes:
        records = self._records
        wrapped = self._read_wrapped()
        if wrapped is None:
            # First use: 256 random bits from which every MAC, blind-index and token key is
            # derived (HKDF, RFC 5869), stored only wrapped by the KEK.
            root = os.urandom(32)
            try:
                with records.write() as conn:
                    sealed = records.wrap_at_least(records.kek_floor(conn), root, ROOT_CONTEXT)
                    conn.execute(
                        insert(t.secrets),
                        {"name": _ROOT, "kek_version": wrapped_version(sealed), "wrapped": sealed},
                    )
                return root
            except sa_exc.IntegrityError:
                pass  # another process stored it first: use theirs
            wrapped = self._read_wrapped()
        try:
            return records.keys.unwrap(bytes(wrapped), ROOT_CONTEXT)
        except IntegrityError:
            # Rotated and retired between our read and the unwrap: read it once more.
            return records.keys.unwrap(bytes(self._read_wrapped()), ROOT_CONTEXT)

    def derived_key(self, label: str) -> bytes:
        """The key derived from the root secret for ``label``."""
        key = self._derived.get(label)
        if key is None:
            key = self._derived[label] = derive_key(self.root_secret(), label)
        return key

    def hmac(self, label: str, value: bytes) -> bytes:
        """HMAC-SHA-256 of ``value`` under the key derived for ``label``.

        The keyed HMAC is set up once a label and copied for each message: ``hmac.digest`` sets
        the key up on every call (two SHA-256 blocks and OpenSSL's algorithm lookup), which
        outweighs the hashing of the short messages hashed here (subject tags, blind indexes: two
        a household in a national rescoring)."""
        keyed = self._hmacs.get(label)
        if keyed is None:
            # A constructor, not hashlib.sha256 itself: hmac then keeps the two hashlib states
            # that copy() clones, rather than an OpenSSL HMAC context (slower to copy).
            keyed = self._hmacs[label] = hmac.new(self.derived_key(label), digestmod=_sha256)
        h = keyed.copy()
        h.update(value)
        return h.digest()

    def mac(self, label: str, value: bytes) -> bytes:
        """HMAC-SHA-256 of ``value`` under a key derived for ``label`` (e.g.
        ``"pseudonym:health:v1"``); different labels give unrelated keys (RFC 5869 §3.2)."""
        if not isinstance(label, str) or not _LABEL.match(label):
            raise VaultError("a MAC label is 1-64 characters of [A-Za-z0-9_.:-]")
        return self.hmac("mac:" + label, value)

    def subject_tag(self, subject: str) -> str:
        """The keyed hash that stands for ``subject`` in audit entries (never the id itself)."""
        return self.hmac("subject-tag:v1", subject.encode()).hex()

    def blind_index(self, kind: str, value: str) -> str:
        """Keyed HMAC-SHA-256 of the normalised ``value``: equality lookups (CNIE, name + birth)
        without decryption, and useless to anyone without the vault's key."""
        if not isinstance(kind, str) or not _LABEL.match(kind):
            raise VaultError("a blind-index kind is 1-64 characters of [A-Za-z0-9_.:-]")
        if not isinstance(value, str):
            raise VaultError("a blind index is computed over text")
        norm = normalise_identifier(value) if kind in _IDENTIFIER_KINDS else normalise_text(value)
        return self.hmac(f"blind-index:{kind}:v1", norm.encode()).hex()

    def deterministic_token(self, purpose: str, value: str) -> str:
        """The same token for the same ``value`` within one declared ``purpose`` (convergent
        tokenisation), for the equality joins that purpose needs; unrelated across purposes.
        Use :func:`new_token` unless a purpose requires joins (CNDP 2020 recommendation)."""
        digest = self.mac(f"token:{purpose}", value.encode())
        return "dt_" + base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")
