"""The server's one JOSE library, joserfc (which Authlib itself is built on): JWS/JWT signing
and verification (RFC 7515, 7519) and JWK export (RFC 7517), behind the few calls the
authorization server, the DPoP verifier and the consent receipts make."""

from __future__ import annotations

import base64
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey

__all__ = [
    "JoseError",
    "is_low_s",
    "public_jwk",
    "sign_jws",
    "sign_jwt",
    "unverified_header",
    "unverified_payload",
    "verify_jws",
]

# The order of the P-256 group. An ECDSA signature (r, s) verifies as (r, n - s) too, so anyone
# holding a token can make a second, different string of it; we sign with s ≤ n/2 only and
# refuse the other form, so each token we issue has exactly one spelling (as Bitcoin's BIP 62
# and Ethereum's EIP-2 do for theirs).
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def sign_jwt(
    claims: dict[str, Any],
    private_key: Any,
    *,
    kid: str | None,
    typ: str,
    alg: str = "ES256",
    jwk: dict[str, Any] | None = None,
) -> str:
    """A compact JWT of ``claims`` signed with ``private_key`` (a cryptography key); ``jwk``
    puts the public key in the header (a DPoP proof, RFC 9449 §4.2)."""
    header: dict[str, Any] = {"alg": alg, "typ": typ}
    if kid is not None:
        header["kid"] = kid
    if jwk is not None:
        header["jwk"] = jwk
    token = jwt.encode(header, claims, _import(private_key), algorithms=[alg])
    return _low_s(token) if alg == "ES256" else token


def sign_jws(
    payload: bytes, private_key: Any, *, kid: str | None, typ: str, alg: str = "ES256"
) -> str:
    """A compact JWS over exactly ``payload`` (RFC 7515 §7.1): for documents whose bytes are
    themselves the artefact (canonical JSON, RFC 8785), which a JWT library would re-encode."""
    header: dict[str, Any] = {"alg": alg, "typ": typ}
    if kid is not None:
        header["kid"] = kid
    token = jws.serialize_compact(header, payload, _import(private_key), algorithms=[alg])
    return _low_s(token) if alg == "ES256" else token


def _signature(token: str) -> tuple[str, int, int]:
    signing_input, _, encoded = token.rpartition(".")
    raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    if len(raw) != 64:
        raise ValueError("not an ES256 signature")
    return signing_input, int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")


def _low_s(token: str) -> str:
    signing_input, r, s = _signature(token)
    if s <= P256_ORDER // 2:
        return token
    raw = r.to_bytes(32, "big") + (P256_ORDER - s).to_bytes(32, "big")
    return f"{signing_input}.{base64.urlsafe_b64encode(raw).rstrip(b'=').decode()}"


def is_low_s(token: str) -> bool:
    """Whether an ES256 token's signature is in the one form we issue (s ≤ n/2)."""
    try:
        return _signature(token)[2] <= P256_ORDER // 2
    except ValueError:
        return False


def unverified_header(token: str) -> dict[str, Any]:
    """The protected header of a compact JWS, before any check (to pick the key)."""
    return dict(jws.extract_compact(token.encode("ascii")).protected)


def unverified_payload(token: str) -> bytes:
    """The payload of a compact JWS, before any check (to find its issuer's keys)."""
    return bytes(jws.extract_compact(token.encode("ascii")).payload)


def verify_jws(token: str, key: Any, algorithms: list[str]) -> tuple[dict[str, Any], bytes]:
    """(header, payload) of a compact JWS whose signature ``key`` verifies with one of
    ``algorithms``; raises :class:`JoseError` otherwise."""
    obj = jws.deserialize_compact(token.encode("ascii"), _import(key), algorithms=algorithms)
    return dict(obj.protected), obj.payload


def import_jwk(jwk: dict[str, Any]) -> Any:
    """A public key from its JWK (EC P-256 or OKP Ed25519)."""
    return OKPKey.import_key(jwk) if jwk.get("kty") == "OKP" else ECKey.import_key(jwk)


def public_jwk(public_key: Any) -> dict[str, Any]:
    """The JWK of a cryptography public key (its public members only)."""
    return dict(_import(public_key).as_dict(private=False))


def _import(key: Any) -> Any:
    if isinstance(key, ECKey | OKPKey):
        return key
    try:
        return ECKey.import_key(key)
    except (JoseError, ValueError, TypeError):
        return OKPKey.import_key(key)
