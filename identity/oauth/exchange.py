"""OAuth 2.0 Token Exchange (RFC 8693): the official behind an agency's call.

An agency client authenticates as for client credentials (``private_key_jwt``, and a DPoP
proof when its registration requires one) and presents, as ``subject_token``, the ID token its
own identity provider issued to the official at the keyboard (RFC 8693 §2.1,
``subject_token_type=urn:ietf:params:oauth:token-type:id_token``, §3). The access token it gets
back is the agency's, with the official as the current actor: ``act: {"sub": <official>}``
(§4.1) and the case worked on as ``case``. The gateway puts both on the audit record of every
call made with that token.

The ID token is believed only when (OpenID Connect Core §3.1.3.7, applied by the token
endpoint instead of a browser client):

- its ``iss`` is an issuer the *calling* client registered (``issuers.py``), and its signature
  verifies with that issuer's registered keys, with an asymmetric algorithm (never ``none`` or
  an HMAC);
- its ``aud`` names Sijill's issuer identifier: the agency's provider issued it *for this
  exchange*, so an ID token the official got for another application of the agency cannot be
  replayed here, nor one of ours there;
- it is current: ``exp`` in the future, ``iat`` not in the future and at most
  :data:`ID_TOKEN_MAX_AGE_S` old, and the whole token at most that long-lived;
- ``sub`` is present. No ``nonce`` is asked for: a nonce binds an ID token to a browser's
  authorization request, and there is none between the agency's server and ours.

The official's id is ``HMAC-SHA-256(k, issuer ‖ 0 ‖ sub)`` under a key of this server
(``issuers.OfficialIds``), not the provider's ``sub``: a ``sub`` is often an employee number
or a login (the official's own personal data, Law 09.08 art. 1), shown here to citizens and
auditors; the keyed hash is stable (one official, one id across citizens, so the CNDP can list
their accesses) and reveals nothing without the key. The agency, which knows whose ID token it
sent, reads the id back from the access token (``act.sub``) and keeps the name: the name is the
agency's to disclose on request.

The case reference (request parameter ``case_reference``) is the agency's file number, by rule
not personal data: a bounded charset and length, and no run of digits long enough to be an
IDCS, a CNIE number or a telephone number.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, ClassVar

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, UnauthorizedClientError
from authlib.oauth2.rfc6749.grants import BaseGrant, TokenEndpointMixin
from authlib.oauth2.rfc6749.hooks import hooked
from joserfc.errors import JoseError

from identity.oauth.clients import Client
from identity.oauth.issuers import TrustedIssuers
from identity.oauth.jose import unverified_header, unverified_payload, verify_jws
from identity.oauth.server import (
    CLIENT_AUTH_METHODS,
    MintsSijillTokens,
    SijillAuthorizationServer,
    check_scope,
)

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 - a URN
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105 - a URN, not a secret
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105
# Signature algorithms of an official's ID token: asymmetric only (RFC 8725 §3.1).
ID_TOKEN_ALGS: tuple[str, ...] = ("ES256", "EdDSA", "Ed25519")
# An ID token older than this is not the official at the keyboard now.
ID_TOKEN_MAX_AGE_S = 600
CLOCK_LEEWAY_S = 5
CASE_PARAMETER = "case_reference"
_CASE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,63}")
# A long run of digits could be an IDCS, a telephone number or a CNIE's number part.
_DIGIT_RUN = re.compile(r"[0-9]{8}")


def valid_case_reference(value: str | None) -> str:
    """The case reference if it is acceptable; :class:`InvalidRequestError` otherwise."""
    if not value or not _CASE.fullmatch(value):
        raise InvalidRequestError(
            f"{CASE_PARAMETER} is required: 1 to 64 letters, digits and . _ / - "
            "(an agency's file number, never personal data)."
        )
    if _DIGIT_RUN.search(value):
        raise InvalidRequestError(
            f"{CASE_PARAMETER} may not hold eight digits in a row (it would look like a "
            "personal identifier)."
        )
    return value


def _claims(payload: bytes) -> dict[str, Any]:
    claims = json.loads(payload)
    if not isinstance(claims, dict):
        raise ValueError("not a JSON object")
    return claims


class TokenExchange(MintsSijillTokens, BaseGrant, TokenEndpointMixin):  # type: ignore[misc]
    """RFC 8693 §2: an agency client exchanges its official's ID token for an access token
    that names the official (``act``) and the case."""

    GRANT_TYPE = TOKEN_EXCHANGE
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(CLIENT_AUTH_METHODS)

    def validate_token_request(self) -> None:
        client: Client = self.authenticate_token_endpoint_client()
        if client.kind != "agency":
            raise UnauthorizedClientError(description="Only agency clients exchange tokens.")
        self.request.client = client
        data = self.request.payload.data
        # §2.1: actor_token and requested_token_type are optional; we issue access tokens
        # only and take the actor from the subject token itself.
        if data.get("requested_token_type") not in (None, ACCESS_TOKEN_TYPE):
            raise InvalidRequestError(description="Only access tokens are issued.")
        if data.get("actor_token") or data.get("actor_token_type"):
            raise InvalidRequestError(description="actor_token is not supported.")
        if data.get("subject_token_type") != ID_TOKEN_TYPE:
            raise InvalidRequestError(description=f"subject_token_type must be {ID_TOKEN_TYPE}.")
        if not data.get("subject_token"):
            raise InvalidRequestError(description="subject_token is required.")
        check_scope(client, self.request.payload.scope)
        if "openid" in (self.request.payload.scope or "").split():
            raise InvalidRequestError(description="openid is not issued by token exchange.")
        self.case = valid_case_reference(data.get(CASE_PARAMETER))
        self.official = self._official(client, data["subject_token"])

    def _official(self, client: Client, subject_token: str) -> str:
        """The official's id, from an ID token the client's trusted provider signed for us.
        Every refusal is ``invalid_grant`` (§2.2.2) and says which check failed, never a
        claim's value."""
        issuers: TrustedIssuers = self.server.trusted_issuers
        try:
            header = unverified_header(subject_token)
            unverified = _claims(unverified_payload(subject_token))
        except (JoseError, ValueError, UnicodeError):
            raise InvalidGrantError(description="The subject_token is not a JWT.") from None
        issuer = unverified.get("iss")
        trusted = issuers.find(client.client_id, issuer) if isinstance(issuer, str) else None
        if trusted is None:
            raise InvalidGrantError(
                description="The subject_token's issuer is not trusted by this client."
            )
        alg = header.get("alg")
        kid = header.get("kid")
        if alg not in ID_TOKEN_ALGS:
            raise InvalidGrantError(description="The subject_token's algorithm is not allowed.")
        if str(header.get("typ", "JWT")).lower() in {"at+jwt", "application/at+jwt"}:
            # RFC 8725 §3.11: an access token of the provider is not an ID token.
            raise InvalidGrantError(description="The subject_token is not an ID token.")
        keys = trusted.key_set()
        candidates = [k for k in keys.keys if kid is None or k.kid == kid]
        claims: dict[str, Any] | None = None
        for key in candidates:
            try:
                _header, payload = verify_jws(subject_token, key, [alg])
            except (JoseError, ValueError):
                continue
            claims = _claims(payload)
            break
        if claims is None:
            raise InvalidGrantError(
                description="The subject_token's signature does not verify with the "
                "issuer's registered keys."
            )
        self._check_claims(claims)
        server: SijillAuthorizationServer = self.server
        return server.officials.of(trusted.issuer, str(claims["sub"]))

    def _check_claims(self, claims: dict[str, Any]) -> None:
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.server.issuer.issuer not in audiences:
            raise InvalidGrantError(description="The subject_token is not meant for Sijill.")
        sub, iat, exp = claims.get("sub"), claims.get("iat"), claims.get("exp")
        if not isinstance(sub, str) or not sub:
            raise InvalidGrantError(description="The subject_token names no subject.")
        if not isinstance(iat, int) or not isinstance(exp, int):
            raise InvalidGrantError(description="The subject_token needs iat and exp.")
        now = int(time.time())
        if exp <= now - CLOCK_LEEWAY_S:
            raise InvalidGrantError(description="The subject_token has expired.")
        if iat > now + CLOCK_LEEWAY_S:
            raise InvalidGrantError(description="The subject_token is issued in the future.")
        if now - iat > ID_TOKEN_MAX_AGE_S or exp - iat > ID_TOKEN_MAX_AGE_S:
            raise InvalidGrantError(
                description=f"The subject_token is older or longer-lived than "
                f"{ID_TOKEN_MAX_AGE_S} seconds."
            )

    @hooked  # type: ignore[untyped-decorator]
    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        token = self.generate_token(
            scope=self.request.payload.scope,
            include_refresh_token=False,
            official=self.official,
            case=self.case,
        )
        # RFC 8693 §2.2.1: the type of the token issued.
        token["issued_token_type"] = ACCESS_TOKEN_TYPE
        return 200, token, self.TOKEN_RESPONSE_HEADER


__all__ = [
    "CASE_PARAMETER",
    "ID_TOKEN_TYPE",
    "TOKEN_EXCHANGE",
    "TokenExchange",
    "valid_case_reference",
]
