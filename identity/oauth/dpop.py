"""DPoP: sender-constrained access tokens (RFC 9449), on pyjwt and cryptography.

Authlib has no DPoP support, so this module is ours. A proof is a JWT the client signs with a
key it holds; the token endpoint binds the token to that key's RFC 7638 thumbprint
(``cnf.jkt``, §6.1) and every resource request must carry a fresh proof by the same key, for
that method and URL, and (§4.3 item 12) holding ``ath``, the hash of the very token presented.
A stolen token without the private key is then useless.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from identity.oauth.jose import JoseError, import_jwk, sign_jwt, unverified_header, verify_jws
from identity.oauth.replay import ReplayStore

# §4.3 item 5: asymmetric algorithms only. The two FAPI 2.0 elliptic-curve ones, by their
# RFC 9864 fully-specified names (what the metadata and WWW-Authenticate advertise).
DPOP_ALGS: tuple[str, ...] = ("ES256", "Ed25519")
# RFC 9864 §2 deprecates the polymorphic "EdDSA"; proofs from clients that still send it are
# accepted (same Ed25519 key check), never advertised.
_ACCEPTED_ALGS: tuple[str, ...] = (*DPOP_ALGS, "EdDSA")
_REQUIRED_CLAIMS = ("jti", "htm", "htu", "iat")
_REQUIRED_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}
_PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k"}


class DpopError(ValueError):
    """The proof is invalid; the message says which check failed (never echoes values),
    ``reason`` as a stable code (the security event recorded for the refusal)."""

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint: the required members only, sorted, no whitespace."""
    try:
        members = _REQUIRED_MEMBERS[jwk["kty"]]
        canonical = {m: jwk[m] for m in members}
    except KeyError:
        raise DpopError("the proof key must be an EC or OKP public key") from None
    data = json.dumps(canonical, separators=(",", ":"), sort_keys=True).encode()
    return b64url(hashlib.sha256(data).digest())


def access_token_hash(access_token: str) -> str:
    """``ath`` (§4.2): base64url of the SHA-256 of the ASCII access token."""
    return b64url(hashlib.sha256(access_token.encode("ascii")).digest())


def normalise_htu(url: str) -> str:
    """The URI compared as ``htu`` (§4.3 item 9): scheme and host lowercased, default port
    dropped, no query and no fragment."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    default = {"http": 80, "https": 443}.get(scheme)
    netloc = host if parts.port in (None, default) else f"{host}:{parts.port}"
    return urlunsplit((scheme, netloc, parts.path or "/", "", ""))


@dataclass(frozen=True)
class DpopProof:
    jkt: str
    jti: str
    iat: int


class DpopVerifier:
    """Checks DPoP proofs (RFC 9449 §4.3) and remembers their ``jti``s in the database."""

    def __init__(self, replay: ReplayStore, *, max_age_s: int = 60, leeway_s: int = 5) -> None:
        self._replay = replay
        self._max_age_s = max_age_s
        self._leeway_s = leeway_s

    def verify(
        self,
        proof: str,
        *,
        method: str,
        url: str,
        access_token: str | None = None,
        expected_jkt: str | None = None,
    ) -> DpopProof:
        try:
            header = unverified_header(proof)
        except (JoseError, ValueError):
            raise DpopError("the DPoP proof is not a JWT") from None
        if header.get("typ") != "dpop+jwt":
            raise DpopError("the DPoP proof must have typ dpop+jwt")
        alg = header.get("alg")
        if alg not in _ACCEPTED_ALGS:
            raise DpopError("the DPoP proof uses an algorithm that is not allowed")
        jwk = header.get("jwk")
        if not isinstance(jwk, dict) or _PRIVATE_MEMBERS & set(jwk):
            raise DpopError("the DPoP proof must carry a public jwk in its header")
        ec = alg == "ES256" and jwk.get("kty") == "EC" and jwk.get("crv") == "P-256"
        okp = alg != "ES256" and jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519"
        if not (ec or okp):
            raise DpopError("the DPoP proof key does not match its algorithm")
        try:
            with warnings.catch_warnings():
                # "EdDSA" is accepted for older clients (above) and never advertised.
                warnings.simplefilter("ignore")
                _header, payload = verify_jws(proof, import_jwk(jwk), [alg])
            claims = json.loads(payload)
        except (JoseError, ValueError, TypeError):
            raise DpopError("the DPoP proof signature or claims are invalid") from None
        if not isinstance(claims, dict) or any(c not in claims for c in _REQUIRED_CLAIMS):
            raise DpopError("the DPoP proof signature or claims are invalid")
        if claims["htm"] != method.upper():
            raise DpopError("the DPoP proof was made for another HTTP method")
        if not isinstance(claims["htu"], str) or normalise_htu(claims["htu"]) != normalise_htu(url):
            raise DpopError("the DPoP proof was made for another URL")
        now = int(time.time())
        iat = claims["iat"]
        if not isinstance(iat, int) or iat > now + self._leeway_s or iat < now - self._max_age_s:
            raise DpopError("the DPoP proof is too old or from the future")
        jkt = jwk_thumbprint(jwk)
        if expected_jkt is not None and jkt != expected_jkt:
            raise DpopError("the DPoP proof key is not the key the token is bound to", "wrong_key")
        if access_token is not None and claims.get("ath") != access_token_hash(access_token):
            raise DpopError("the DPoP proof does not carry the hash of this access token")
        if not isinstance(claims["jti"], str) or not self._replay.first_use(
            "dpop", jkt, claims["jti"], iat + self._max_age_s + self._leeway_s
        ):
            raise DpopError("the DPoP proof has been used before", "replayed")
        return DpopProof(jkt=jkt, jti=claims["jti"], iat=iat)


def make_proof(
    private_key: Any,
    public_jwk: dict[str, Any],
    *,
    method: str,
    url: str,
    access_token: str | None = None,
    alg: str = "ES256",
    jti: str | None = None,
    iat: int | None = None,
) -> str:
    """Create a DPoP proof (the client side of §4.2), for agency programs and tests."""
    import secrets

    claims: dict[str, Any] = {
        "jti": jti or secrets.token_urlsafe(16),
        "htm": method.upper(),
        "htu": normalise_htu(url),
        "iat": int(time.time()) if iat is None else iat,
    }
    if access_token is not None:
        claims["ath"] = access_token_hash(access_token)
    return sign_jwt(claims, private_key, kid=None, typ="dpop+jwt", alg=alg, jwk=public_jwk)
