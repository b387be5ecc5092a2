"""The identity providers an agency client trusts for its own officials.

An agency signs its officials in with its own identity provider (OpenID Connect) and presents
an official's ID token to the token-exchange grant (``exchange.py``, RFC 8693). That token is
believed only when its issuer is one the *calling* client registered here, with the keys
registered with it: a provider trusted by one agency vouches for nobody at another.

Keys are stored, not fetched from the provider's ``jwks_uri`` at request time: the token
endpoint then makes no outbound call an attacker could steer or stall, and a change of the
provider's keys is an explicit act (``sijill clients trust-idp`` again), like a client's own
key rotation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from joserfc.jwk import KeySet
from sqlalchemy import Engine, delete, select

from identity.oauth.clients import ClientRegistryError, validate_public_jwks
from identity.oauth.secrets import key_file
from identity.oauth.tables import trusted_issuers
from storekit.bulk import upsert_rows

MAX_ISSUER_LENGTH = 255
OFFICIAL_PREFIX = "off_"
# What an official's id looks like: the prefix and 20 bytes of the MAC in lowercase base32.
OFFICIAL_ID_PATTERN = r"off_[a-z2-7]{32}"


@dataclass(frozen=True)
class TrustedIssuer:
    client_id: str
    issuer: str
    jwks: dict[str, Any]

    def key_set(self) -> KeySet:
        return KeySet.import_key_set(cast(Any, self.jwks))


def validate_issuer(issuer: str) -> str:
    """An OpenID Connect issuer identifier (Discovery 1.0 §2: https, no query or fragment)."""
    parts = urlsplit(issuer)
    local = parts.scheme == "http" and parts.hostname in {"127.0.0.1", "localhost"}
    if (
        not issuer
        or len(issuer) > MAX_ISSUER_LENGTH
        or not (parts.scheme == "https" or local)
        or not parts.netloc
        or parts.query
        or parts.fragment
    ):
        raise ClientRegistryError("issuer must be an https URL without query or fragment")
    return issuer


class TrustedIssuers:
    """Per-client trusted identity providers in the ``main`` store."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def trust(self, client_id: str, issuer: str, jwks: Any) -> TrustedIssuer:
        """Register (or replace the keys of) ``issuer`` for ``client_id``."""
        found = TrustedIssuer(client_id, validate_issuer(issuer), validate_public_jwks(jwks))
        row = (client_id, found.issuer, json.dumps(found.jwks), int(time.time()))
        with self._engine.begin() as conn:
            upsert_rows(conn, trusted_issuers, [row])
        return found

    def distrust(self, client_id: str, issuer: str) -> bool:
        with self._engine.begin() as conn:
            result = conn.execute(
                delete(trusted_issuers).where(
                    trusted_issuers.c.client_id == client_id, trusted_issuers.c.issuer == issuer
                )
            )
        return bool(result.rowcount)

    def find(self, client_id: str, issuer: str) -> TrustedIssuer | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(trusted_issuers.c.jwks).where(
                    trusted_issuers.c.client_id == client_id, trusted_issuers.c.issuer == issuer
                )
            ).first()
        return TrustedIssuer(client_id, issuer, json.loads(row[0])) if row else None

    def of(self, client_id: str) -> list[TrustedIssuer]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(trusted_issuers.c.issuer, trusted_issuers.c.jwks)
                .where(trusted_issuers.c.client_id == client_id)
                .order_by(trusted_issuers.c.issuer)
            ).all()
        return [TrustedIssuer(client_id, r[0], json.loads(r[1])) for r in rows]


class OfficialIds:
    """An official's stable pseudonymous id: a keyed hash of their provider's (issuer, sub),
    under a key of this server (why, in ``exchange.py``)."""

    def __init__(self, key_path: Path) -> None:
        self._key = key_file(key_path)

    def of(self, issuer: str, subject: str) -> str:
        mac = hmac.new(self._key, issuer.encode() + b"\x00" + subject.encode(), hashlib.sha256)
        return OFFICIAL_PREFIX + base64.b32encode(mac.digest()[:20]).decode().lower()
