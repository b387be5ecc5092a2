"""Mutual-TLS client certificates (RFC 8705): certificate-bound tokens and the
``self_signed_tls_client_auth`` client authentication, on ``cryptography``.

TLS ends at a proxy in front of the gateway; the proxy checks that the client holds the private
key of the certificate it presents and forwards that certificate, URL-encoded PEM, in a header
(nginx ``$ssl_client_escaped_cert``). Which header and which proxies are trusted to set it is the
gateway's business (``gateway/auth.py``); this module parses what arrives, computes the
certificate's SHA-256 thumbprint (``x5t#S256``, RFC 8705 §3.1) and matches it against a
client's registration. Authlib has no RFC 8705 support.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any
from urllib.parse import unquote

from authlib.oauth2.rfc6749 import InvalidClientError
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from identity.oauth.dpop import b64url
from identity.oauth.jose import import_jwk

SELF_SIGNED_TLS_CLIENT_AUTH = "self_signed_tls_client_auth"
# A forwarded PEM certificate of an EC or Ed25519 key is about 1 KiB; a chain or an RSA-4096
# certificate fits well under this. Anything longer is not parsed.
MAX_FORWARDED_BYTES = 16 * 1024


class CertificateError(ValueError):
    """A forwarded or registered certificate is unusable; ``reason`` is a stable code."""

    def __init__(self, message: str, reason: str = "malformed") -> None:
        super().__init__(message)
        self.reason = reason


def certificate_thumbprint(certificate: x509.Certificate) -> str:
    """RFC 8705 §3.1 ``x5t#S256``: base64url SHA-256 of the certificate's DER encoding."""
    return b64url(hashlib.sha256(certificate.public_bytes(Encoding.DER)).digest())


def parse_forwarded_certificate(value: str) -> x509.Certificate:
    """The client certificate a proxy forwarded: URL-encoded PEM (nginx
    ``$ssl_client_escaped_cert``) or plain PEM; the first certificate when a chain came."""
    if not value or len(value) > MAX_FORWARDED_BYTES:
        raise CertificateError("the forwarded client certificate is empty or too long")
    pem = unquote(value).strip()
    try:
        return x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise CertificateError("the forwarded client certificate is not PEM") from None


def _public_bytes(key: Any) -> bytes:
    return bytes(key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))


def check_registered_certificates(jwks: dict[str, Any]) -> None:
    """Each key's ``x5c`` (RFC 7517 §4.7) must begin with a certificate of that very key, and
    an ``x5t#S256`` must be a SHA-256 thumbprint: a registration naming another key's
    certificate would let that certificate's holder act as this client."""
    for key in jwks["keys"]:
        chain = key.get("x5c")
        if chain is not None:
            if not isinstance(chain, list) or not chain or not isinstance(chain[0], str):
                raise CertificateError("x5c must be a non-empty array of base64 certificates")
            try:
                certificate = x509.load_der_x509_certificate(base64.b64decode(chain[0]))
            except (ValueError, binascii.Error):
                raise CertificateError("x5c holds a certificate that cannot be read") from None
            listed = import_jwk(key).public_key
            presented = certificate.public_key()
            if not isinstance(
                presented, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
            ) or _public_bytes(presented) != _public_bytes(listed):
                raise CertificateError("x5c's first certificate is not of the key it is listed in")
        thumbprint = key.get("x5t#S256")
        if thumbprint is not None and (
            not isinstance(thumbprint, str) or len(thumbprint) != 43 or "=" in thumbprint
        ):
            raise CertificateError("x5t#S256 must be a base64url SHA-256 thumbprint")


def registered_thumbprints(jwks: dict[str, Any]) -> frozenset[str]:
    """The certificate thumbprints a client registered: each key's ``x5t#S256`` and the
    thumbprint of the first certificate of each ``x5c``."""
    found: set[str] = set()
    for key in jwks.get("keys", []):
        if isinstance(key.get("x5t#S256"), str):
            found.add(key["x5t#S256"])
        chain = key.get("x5c")
        if isinstance(chain, list) and chain and isinstance(chain[0], str):
            found.add(b64url(hashlib.sha256(base64.b64decode(chain[0])).digest()))
    return frozenset(found)


class SelfSignedTlsClientAuth:
    """RFC 8705 §2.2 ``self_signed_tls_client_auth``, an Authlib client authentication method:
    the client names itself with ``client_id`` and proves itself by the certificate the TLS
    handshake checked, which must be one it registered. A request carrying a client assertion
    is left to ``private_key_jwt``."""

    def __call__(self, query_client: Any, request: Any) -> Any:
        thumbprint = getattr(request, "client_cert", None)
        data = request.form
        client_id = data.get("client_id")
        if not thumbprint or not client_id or data.get("client_assertion"):
            return None
        client = query_client(client_id)
        if client is None:
            raise InvalidClientError(description="The client does not exist on this server.")
        if thumbprint not in registered_thumbprints(client.jwks):
            raise InvalidClientError(
                description="The client certificate is not one this client registered."
            )
        return client
