"""Access tokens (RFC 9068 JWT profile) and OpenID Connect ID tokens: minting and checking.

Authlib's ``rfc9068.JWTBearerTokenGenerator`` has no view of the HTTP request, so it cannot put
the DPoP key thumbprint (``cnf.jkt``) into a token, and it signs without a ``kid``; minting is
therefore ours, on joserfc (``identity.oauth.jose``), with the claims RFC 9068 §2.2 requires.

The verifier is the resource server's half and trusts nothing in the token before its
signature checks out: the algorithm comes from our allow-list (never ``none`` or an HMAC, whose
"secret" an attacker would take from our published public key), the key from our own JWKS by
``kid``, and ``typ`` must be ``at+jwt`` so an ID token or a client assertion signed by a key we
trust cannot be replayed as an access token (RFC 9068 §4, RFC 8725 §3.11).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import (
    ExpiredTokenError,
    InvalidClaimError,
    InvalidTokenError,
    JoseError,
    MissingClaimError,
)
from sqlalchemy import Engine, bindparam, delete, insert, select
from sqlalchemy.exc import IntegrityError

from identity.oauth.jose import is_low_s, sign_jwt, unverified_header, verify_jws
from identity.oauth.keys import SigningKeys
from identity.oauth.tables import revoked_tokens
from storekit import hot_sql

ACCESS_TOKEN_ALGS: tuple[str, ...] = ("ES256",)
ACCESS_TOKEN_TYP = "at+jwt"  # noqa: S105 - a media type, not a secret
ACCESS_TOKEN_TTL_S = 300
ID_TOKEN_TTL_S = 300
# Revoked sessions share the jti list; a jti is url-safe base64, so it never holds ':'.
SESSION_PREFIX = "sid:"
# Access tokens whose signature and claims were checked, kept by the verifier (see verify).
VERIFIED_CACHE_SIZE = 4096

_IS_REVOKED = select(revoked_tokens.c.jti).where(revoked_tokens.c.jti == bindparam("jti"))


class InvalidToken(ValueError):
    """The access token is not acceptable; the message says which check failed, ``reason``
    as a stable code (the security event recorded for the refusal)."""

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class AccessToken:
    """The checked claims of an access token."""

    token_id: str
    client_id: str
    subject: str
    subject_kind: str | None
    scopes: tuple[str, ...]
    issued_at: int
    expires_at: int
    jkt: str | None
    session_id: str | None = None
    # RFC 8705 §3.1 ``cnf.x5t#S256``: the client certificate the token is bound to.
    x5t: str | None = None
    # RFC 8693 §4.1 ``act.sub``: the official acting through an agency client, as the
    # token-exchange grant minted it (a pseudonymous id), and the case they work on.
    official: str | None = None
    case: str | None = None


class RevocationList:
    """Revoked access token ids (RFC 7009), kept until the token would have expired."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._hot = hot_sql(engine)

    def revoke(self, jti: str, client_id: str, expires_at: int) -> None:
        now = int(time.time())
        try:
            with self._engine.begin() as conn:
                conn.execute(delete(revoked_tokens).where(revoked_tokens.c.expires_at < now))
                conn.execute(
                    insert(revoked_tokens).values(
                        jti=jti, client_id=client_id, expires_at=expires_at, revoked_at=now
                    )
                )
        except IntegrityError:
            pass  # already revoked: RFC 7009 §2.2 answers 200 either way

    def revoke_session(self, session_id: str, client_id: str, until: int) -> None:
        """Every token minted from one sign-in (OIDC ``sid``), until ``until``."""
        self.revoke(SESSION_PREFIX + session_id, client_id, until)

    def is_session_revoked(self, session_id: str) -> bool:
        return self.is_revoked(SESSION_PREFIX + session_id)

    def is_revoked(self, jti: str) -> bool:
        # Read on every use of a token (hot path): a revocation applies to the next request.
        return self._hot.one(_IS_REVOKED, jti=jti) is not None


class TokenIssuer:
    def __init__(
        self, keys: SigningKeys, issuer: str, audience: str, *, ttl_s: int = ACCESS_TOKEN_TTL_S
    ) -> None:
        self._keys = keys
        self.issuer = issuer
        self.audience = audience
        self.ttl_s = ttl_s

    def access_token(
        self,
        *,
        client_id: str,
        scope: str,
        subject: str | None = None,
        subject_kind: str | None = None,
        jkt: str | None = None,
        x5t: str | None = None,
        auth_time: int | None = None,
        session_id: str | None = None,
        official: str | None = None,
        case: str | None = None,
    ) -> tuple[str, dict[str, Any]]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject or client_id,
            "aud": self.audience,
            "client_id": client_id,
            "scope": scope,
            "jti": secrets.token_urlsafe(24),
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl_s,
        }
        if subject_kind:
            claims["sijill_subject_kind"] = subject_kind
        if auth_time is not None:
            claims["auth_time"] = auth_time
        cnf: dict[str, str] = {}
        if jkt:
            cnf["jkt"] = jkt  # RFC 9449 §6.1
        if x5t:
            cnf["x5t#S256"] = x5t  # RFC 8705 §3.1
        if cnf:
            claims["cnf"] = cnf
        if session_id:
            claims["sid"] = session_id
        if official:
            claims["act"] = {"sub": official}  # RFC 8693 §4.1: the current actor
        if case:
            claims["case"] = case
        key = self._keys.current()
        token = sign_jwt(claims, key.private_key, kid=key.kid, typ=ACCESS_TOKEN_TYP)
        return token, claims

    def id_token(
        self,
        *,
        client_id: str,
        subject: str,
        auth_time: int,
        nonce: str | None,
        amr: list[str],
        session_id: str | None = None,
    ) -> str:
        """OpenID Connect Core §2 ID token for the client that ran the code flow."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": client_id,
            "azp": client_id,
            "iat": now,
            "exp": now + ID_TOKEN_TTL_S,
            "auth_time": auth_time,
            "amr": amr,
        }
        if nonce:
            claims["nonce"] = nonce
        if session_id:
            claims["sid"] = session_id
        key = self._keys.current()
        return sign_jwt(claims, key.private_key, kid=key.kid, typ="JWT")


def _json_object(payload: bytes) -> dict[str, Any]:
    claims = json.loads(payload)
    if not isinstance(claims, dict):
        raise ValueError("the token's claims are not a JSON object")
    return claims


class AccessTokenVerifier:
    def __init__(
        self,
        keys: SigningKeys,
        revocations: RevocationList,
        issuer: str,
        audience: str,
        *,
        leeway_s: int = 5,
    ) -> None:
        self._keys = keys
        self._revocations = revocations
        self.issuer = issuer
        self.audience = audience
        self._leeway_s = leeway_s
        self._claims = jwt.JWTClaimsRegistry(
            leeway=leeway_s,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            jti={"essential": True},
            client_id={"essential": True},
        )
        # token -> (its checked claims, the kid that signed it). An agency presents one token
        # for up to ACCESS_TOKEN_TTL_S; its ECDSA signature is checked the first time only.
        # Every use still checks expiry, that the signing key is still ours, and revocation.
        self._verified: dict[str, tuple[AccessToken, str]] = {}
        self._verified_lock = threading.Lock()

    def verify(self, token: str) -> AccessToken:
        hit = self._verified.get(token)
        if hit is not None:
            checked, kid = hit
            if time.time() < checked.expires_at + self._leeway_s and self._keys.find(kid):
                return self._unrevoked(checked)
            with self._verified_lock:
                self._verified.pop(token, None)
        checked, kid = self._check(token)
        with self._verified_lock:
            while len(self._verified) >= VERIFIED_CACHE_SIZE:
                del self._verified[next(iter(self._verified))]  # the oldest
            self._verified[token] = (checked, kid)
        return self._unrevoked(checked)

    def _unrevoked(self, checked: AccessToken) -> AccessToken:
        if self._revocations.is_revoked(checked.token_id):
            raise InvalidToken("the access token has been revoked", "revoked")
        if checked.session_id and self._revocations.is_session_revoked(checked.session_id):
            raise InvalidToken("the sign-in this token came from has ended", "session_ended")
        return checked

    def id_token_hint(self, token: str) -> dict[str, Any]:
        """The claims of an ID token we issued, expired or not (OIDC RP-Initiated Logout 1.0
        §2: the hint names a past sign-in, so expiry does not void it; the signature does)."""
        try:
            header = unverified_header(token)
            kid = header.get("kid")
            key = self._keys.find(kid) if isinstance(kid, str) else None
            if key is None or header.get("alg") not in ACCESS_TOKEN_ALGS:
                raise InvalidToken("the id_token_hint is not signed by this server")
            _header, payload = verify_jws(
                token, key.private_key.public_key(), list(ACCESS_TOKEN_ALGS)
            )
            claims: dict[str, Any] = _json_object(payload)
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": self.issuer},
                sub={"essential": True},
                aud={"essential": True},
            ).validate(claims)
        except (JoseError, ValueError):
            raise InvalidToken("the id_token_hint is not an ID token of this server") from None
        if str(header.get("typ", "JWT")).lower() == ACCESS_TOKEN_TYP:
            raise InvalidToken("the id_token_hint is an access token, not an ID token")
        return claims

    def _check(self, token: str) -> tuple[AccessToken, str]:
        """Signature and claims (not revocation): the checks whose answer cannot change
        while the token is unexpired and its key is still in our JWKS."""
        try:
            header = unverified_header(token)
        except (JoseError, ValueError):
            raise InvalidToken("the access token is not a JWT", "malformed") from None
        if header.get("alg") not in ACCESS_TOKEN_ALGS:
            raise InvalidToken(
                "the access token is signed with an algorithm not allowed", "bad_algorithm"
            )
        if str(header.get("typ", "")).lower() not in {"at+jwt", "application/at+jwt"}:
            raise InvalidToken("the access token must have typ at+jwt", "malformed")
        kid = header.get("kid")
        key = self._keys.find(kid) if isinstance(kid, str) else None
        if key is None or not isinstance(kid, str):
            raise InvalidToken("the access token is signed by an unknown key", "bad_signature")
        try:
            _header, payload = verify_jws(
                token, key.private_key.public_key(), list(ACCESS_TOKEN_ALGS)
            )
            claims = _json_object(payload)
            self._claims.validate(claims)
        except ExpiredTokenError:
            raise InvalidToken("the access token has expired", "expired") from None
        except InvalidClaimError as exc:
            which = {"iss": "was issued by another issuer", "aud": "is meant for another audience"}
            detail = which.get(exc.claim, "signature or claims are invalid")
            raise InvalidToken(f"the access token {detail}", "bad_claims") from None
        except InvalidTokenError:
            raise InvalidToken("the access token is not valid yet", "not_yet_valid") from None
        except (MissingClaimError, JoseError, ValueError):
            raise InvalidToken(
                "the access token signature or claims are invalid", "bad_signature"
            ) from None
        if not is_low_s(token):
            # A copy of one of our tokens with its signature's s negated: the same claims under
            # another string, which string-keyed caches would take for a new token.
            raise InvalidToken(
                "the access token signature is not in its canonical form", "bad_signature"
            )
        cnf = claims.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
        x5t = cnf.get("x5t#S256") if isinstance(cnf, dict) else None
        scope = claims.get("scope", "")
        act = claims.get("act")
        official = act.get("sub") if isinstance(act, dict) else None
        case = claims.get("case")
        checked = AccessToken(
            token_id=claims["jti"],
            client_id=claims["client_id"],
            subject=claims["sub"],
            subject_kind=claims.get("sijill_subject_kind"),
            scopes=tuple(scope.split()) if isinstance(scope, str) else (),
            issued_at=int(claims["iat"]),
            expires_at=int(claims["exp"]),
            jkt=jkt if isinstance(jkt, str) else None,
            x5t=x5t if isinstance(x5t, str) else None,
            session_id=claims["sid"] if isinstance(claims.get("sid"), str) else None,
            official=official if isinstance(official, str) else None,
            case=case if isinstance(case, str) else None,
        )
        return checked, kid
