"""The authorization server: Authlib's RFC 6749 machinery with Sijill's clients and tokens.

Authlib supplies the grant state machines (client credentials, authorization code), PKCE
(RFC 7636), ``private_key_jwt`` client authentication (RFC 7523 §2.2), introspection
(RFC 7662) and revocation (RFC 7009). We supply the storage, the JWT minting (``tokens.py``),
DPoP (``dpop.py``) and a framework-neutral request type that the gateway fills from Starlette.

FAPI 2.0 Security Profile choices enforced here: confidential clients only, ``private_key_jwt``
only, PKCE with S256 only, exact redirect URI match, ``iss`` in the authorization response
(RFC 9207), access tokens of five minutes, no refresh tokens, no implicit or password grants.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    OAuth2Payload,
    OAuth2Request,
)
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, ClientCredentialsGrant
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError
from sqlalchemy import Engine, delete, insert

from identity.oauth.clients import (
    ACCEPTED_ASSERTION_ALGS,
    CLIENT_AUTH_METHODS,
    Client,
    ClientRegistry,
)
from identity.oauth.issuers import OfficialIds, TrustedIssuers
from identity.oauth.mtls import SELF_SIGNED_TLS_CLIENT_AUTH, SelfSignedTlsClientAuth
from identity.oauth.replay import ReplayStore
from identity.oauth.tables import authorization_codes
from identity.oauth.tokens import AccessToken, AccessTokenVerifier, InvalidToken, TokenIssuer

CODE_CHALLENGE_METHODS: tuple[str, ...] = ("S256",)
ASSERTION_MAX_LIFETIME_S = 300
CLOCK_LEEWAY_S = 5
CODE_TTL_S = 60


@dataclass
class HttpRequest:
    """What the server needs of an HTTP request, filled by the web framework's adapter.

    ``url`` is the request's public URL (the issuer's origin plus the path and query), not the
    address a proxy forwarded to: audiences and DPoP ``htu`` are compared against it.
    """

    method: str
    url: str
    headers: dict[str, str]
    form: list[tuple[str, str]] = field(default_factory=list)
    dpop_jkt: str | None = None
    # RFC 8705: the SHA-256 thumbprint of the client certificate the TLS handshake checked,
    # as the gateway accepted it from a trusted proxy; None without one.
    client_cert: str | None = None


@dataclass
class HttpResponse:
    status: int
    body: Any
    headers: list[tuple[str, str]]

    @property
    def location(self) -> str | None:
        return next((v for k, v in self.headers if k.lower() == "location"), None)


@dataclass(frozen=True)
class SignedInUser:
    """The person a login established: a citizen (by IDCS), an officer or an auditor."""

    subject: str
    kind: str  # "citizen" | "officer" | "auditor"
    auth_time: int
    amr: tuple[str, ...] = ("otp",)

    def get_user_id(self) -> str:
        return self.subject

    @property
    def session_id(self) -> str:
        """OIDC ``sid``: names this sign-in in the tokens minted from it, so RP-initiated
        logout can revoke them all. Derived, not stored: a code redeemed later rebuilds it."""
        digest = hashlib.sha256(f"{self.kind}:{self.subject}:{self.auth_time}".encode()).digest()
        return base64.urlsafe_b64encode(digest[:18]).decode("ascii")


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in pairs:
            self._datalist[key].append(value)
        self._data = {k: v[0] for k, v in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class _Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, request: HttpRequest) -> None:
        super().__init__(request.method, request.url, headers=request.headers)
        query = parse_qsl(urlsplit(request.url).query, keep_blank_values=True)
        pairs = request.form if request.method == "POST" else query
        self.payload = _Payload(pairs)
        self._args = dict(query)
        self._form = dict(request.form)
        self.dpop_jkt = request.dpop_jkt
        self.client_cert = request.client_cert

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class PrivateKeyJwt(JWTBearerClientAssertion):  # type: ignore[misc]
    """``private_key_jwt`` (RFC 7523 §3) with FAPI 2.0's limits on the assertion."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, issuer: str, token_endpoint: str, replay: ReplayStore) -> None:
        super().__init__(validate_jti=True, leeway=CLOCK_LEEWAY_S)
        self._audiences = [issuer, token_endpoint]
        self._replay = replay

    def get_audiences(self) -> list[str]:
        # FAPI 2.0 §5.3.2.1 item 8: the issuer; RFC 7523 §3 item 3: the token endpoint.
        return list(self._audiences)

    def resolve_client_public_key(self, client: Client) -> Any:
        return client.key_set()

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> Any:
        try:
            token = jose_jwt.decode(
                assertion, resolve_key, algorithms=list(ACCEPTED_ASSERTION_ALGS)
            )
        except JoseError as exc:
            raise InvalidClientError(
                description="The client assertion signature is invalid "
                "or uses an algorithm not allowed."
            ) from exc
        self.verify_claims(token.claims)
        return token.claims

    def verify_claims(self, claims: Any) -> None:
        iat, exp = claims.get("iat"), claims.get("exp")
        now = int(time.time())
        if not isinstance(iat, int) or not isinstance(exp, int):
            raise InvalidClientError(description="The client assertion needs iat and exp.")
        if exp - iat > ASSERTION_MAX_LIFETIME_S:
            # A long-lived assertion is a bearer credential by another name.
            raise InvalidClientError(
                description="The client assertion lives longer than "
                f"{ASSERTION_MAX_LIFETIME_S} seconds."
            )
        if iat > now + CLOCK_LEEWAY_S:
            raise InvalidClientError(description="The client assertion is issued in the future.")
        super().verify_claims(claims)

    def validate_jti(self, claims: Any, jti: Any) -> bool:
        if not isinstance(jti, str):
            return False
        return self._replay.first_use(
            "assertion", str(claims["sub"]), jti, int(claims["exp"]) + CLOCK_LEEWAY_S
        )


class DpopRequired(OAuth2Error):  # type: ignore[misc]
    """RFC 9449 §5.2: a client registered ``dpop_bound_access_tokens`` gets no bearer token."""

    error = "invalid_dpop_proof"
    description = "this client must prove possession of its key with a DPoP proof (RFC 9449)"
    status_code = 400


# The description of CertificateRequired: the token endpoint records the refusal by it.
CERTIFICATE_REQUIRED = (
    "this client's tokens are bound to its TLS client certificate (RFC 8705); "
    "present the certificate"
)


class CertificateRequired(OAuth2Error):  # type: ignore[misc]
    """RFC 8705 §3: a ``tls_client_certificate_bound_access_tokens`` client asked for a token
    without a client certificate, so there is nothing to bind the token to."""

    error = "invalid_request"
    description = CERTIFICATE_REQUIRED
    status_code = 400


class MintsSijillTokens:
    """Token minting for every grant: RFC 9068 JWT, DPoP-bound when a proof came along,
    certificate-bound (RFC 8705) for a client registered so or one that must be sender
    constrained and brought a certificate but no proof."""

    request: Any
    server: Any

    def generate_token(
        self,
        user: SignedInUser | None = None,
        scope: str | None = None,
        grant_type: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
        official: str | None = None,
        case: str | None = None,
    ) -> dict[str, Any]:
        server: SijillAuthorizationServer = self.server
        client: Client = self.request.client
        scope = scope or " ".join(client.scopes)
        jkt = self.request.dpop_jkt
        certificate = self.request.client_cert
        if client.tls_bound and certificate is None:
            raise CertificateRequired()
        if client.dpop_bound and jkt is None and certificate is None:
            raise DpopRequired()
        bind_certificate = client.tls_bound or (client.dpop_bound and jkt is None)
        token, claims = server.issuer.access_token(
            client_id=client.client_id,
            scope=scope,
            subject=user.subject if user else None,
            subject_kind=user.kind if user else None,
            jkt=jkt,
            x5t=certificate if bind_certificate else None,
            auth_time=user.auth_time if user else None,
            session_id=user.session_id if user else None,
            official=official,
            case=case,
        )
        result: dict[str, Any] = {
            "access_token": token,
            "token_type": "DPoP" if jkt else "Bearer",
            "expires_in": claims["exp"] - claims["iat"],
            "scope": scope,
        }
        if user is not None and "openid" in scope.split():
            code = self.request.authorization_code
            result["id_token"] = server.issuer.id_token(
                client_id=client.client_id,
                subject=user.subject,
                auth_time=user.auth_time,
                nonce=getattr(code, "nonce", None),
                amr=list(user.amr),
                session_id=user.session_id,
            )
        return result


def check_scope(client: Client, scope: str | None) -> None:
    # RFC 6749 §3.3: refuse rather than silently narrow, so a client learns its registration.
    for item in (scope or "").split():
        if item not in client.scopes and item != "openid":
            raise InvalidScopeError(description="A requested scope is not granted to this client.")


class ClientCredentials(MintsSijillTokens, ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(CLIENT_AUTH_METHODS)

    def validate_requested_scope(self) -> None:
        check_scope(self.request.client, self.request.payload.scope)
        if "openid" in (self.request.payload.scope or "").split():
            raise InvalidScopeError(description="openid needs a signed-in person.")


@dataclass(frozen=True)
class AuthorizationCodeRecord:
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str
    code_challenge_method: str
    user: SignedInUser

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


class S256Only(CodeChallenge):  # type: ignore[misc]
    """PKCE is mandatory and only S256 (FAPI 2.0 §5.3.2.2 item 5): ``plain`` reveals the
    verifier to whoever sees the authorization request."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = list(CODE_CHALLENGE_METHODS)
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE with code_challenge_method=S256 is required.")
        super().validate_code_challenge(grant, redirect_uri)


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


class AuthorizationCode(MintsSijillTokens, AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(CLIENT_AUTH_METHODS)

    def validate_requested_scope(self) -> None:
        client = self.server.query_client(self.request.payload.client_id)
        if client is not None:
            check_scope(client, self.request.payload.scope)

    def save_authorization_code(self, code: str, request: Any) -> None:
        user: SignedInUser = request.user
        data = request.payload.data
        server: SijillAuthorizationServer = self.server
        with server.engine.begin() as conn:
            conn.execute(
                insert(authorization_codes).values(
                    code_hash=_code_hash(code),
                    client_id=request.client.client_id,
                    redirect_uri=request.payload.redirect_uri or "",
                    scope=request.payload.scope or "",
                    nonce=data.get("nonce"),
                    code_challenge=data["code_challenge"],
                    code_challenge_method=data["code_challenge_method"],
                    subject=user.subject,
                    subject_kind=user.kind,
                    auth_time=user.auth_time,
                    expires_at=int(time.time()) + CODE_TTL_S,
                )
            )

    def query_authorization_code(self, code: str, client: Client) -> Any:
        # Consumed on first look (DELETE … RETURNING): two racing redemptions cannot both win.
        server: SijillAuthorizationServer = self.server
        with server.engine.begin() as conn:
            row = (
                conn.execute(
                    delete(authorization_codes)
                    .where(authorization_codes.c.code_hash == _code_hash(code))
                    .returning(*authorization_codes.c)
                )
                .mappings()
                .first()
            )
        if (
            row is None
            or row["client_id"] != client.client_id
            or row["expires_at"] < int(time.time())
        ):
            return None
        return AuthorizationCodeRecord(
            client_id=row["client_id"],
            redirect_uri=row["redirect_uri"],
            scope=row["scope"],
            nonce=row["nonce"],
            code_challenge=row["code_challenge"],
            code_challenge_method=row["code_challenge_method"],
            user=SignedInUser(row["subject"], row["subject_kind"], int(row["auth_time"])),
        )

    def delete_authorization_code(self, authorization_code: Any) -> None:
        return None  # already deleted when it was looked up

    def authenticate_user(self, authorization_code: AuthorizationCodeRecord) -> SignedInUser:
        return authorization_code.user


@dataclass
class _TokenRecord:
    token: AccessToken

    def is_expired(self) -> bool:
        return self.token.expires_at < time.time()

    def is_revoked(self) -> bool:
        return False  # the verifier has already refused revoked tokens

    def check_client(self, client: Client) -> bool:
        return self.token.client_id == client.client_id


class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS: ClassVar[list[str]] = list(CLIENT_AUTH_METHODS)
    SUPPORTED_TOKEN_TYPES = ("access_token",)

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        try:
            return _TokenRecord(self.server.verifier.verify(token_string))
        except InvalidToken:
            return None

    def check_permission(self, token: _TokenRecord, client: Client, request: Any) -> bool:
        # A client learns about its own tokens; the CNDP auditor about any (RFC 7662 §4).
        return token.check_client(client) or client.kind == "auditor"

    def introspect_token(self, token: _TokenRecord) -> dict[str, Any]:
        t = token.token
        body: dict[str, Any] = {
            "active": True,
            "client_id": t.client_id,
            "sub": t.subject,
            "scope": " ".join(t.scopes),
            "token_type": "DPoP" if t.jkt else "Bearer",
            "exp": t.expires_at,
            "iat": t.issued_at,
            "jti": t.token_id,
            "iss": self.server.issuer.issuer,
            "aud": self.server.issuer.audience,
        }
        cnf = {k: v for k, v in (("jkt", t.jkt), ("x5t#S256", t.x5t)) if v}
        if cnf:
            body["cnf"] = cnf  # RFC 9449 §6.2, RFC 8705 §3.2
        if t.official:
            body["act"] = {"sub": t.official}  # RFC 8693 §4.1: the acting official
            body["case"] = t.case
        return body


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS: ClassVar[list[str]] = list(CLIENT_AUTH_METHODS)
    SUPPORTED_TOKEN_TYPES = ("access_token",)

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        try:
            return _TokenRecord(self.server.verifier.verify(token_string))
        except InvalidToken:
            return None  # unknown, expired or already revoked: 200 all the same (§2.2)

    def revoke_token(self, token: _TokenRecord, request: Any) -> None:
        self.server.revocations.revoke(
            token.token.token_id, token.token.client_id, token.token.expires_at
        )


class SijillAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    def __init__(
        self,
        *,
        engine: Engine,
        registry: ClientRegistry,
        issuer: TokenIssuer,
        verifier: AccessTokenVerifier,
        revocations: Any,
        replay: ReplayStore,
        token_endpoint: str,
        trusted_issuers: TrustedIssuers,
        officials: OfficialIds,
    ) -> None:
        super().__init__()
        self.engine = engine
        self.registry = registry
        self.issuer = issuer
        self.verifier = verifier
        self.revocations = revocations
        # What the token-exchange grant (exchange.py, registered by service.py) reads.
        self.trusted_issuers = trusted_issuers
        self.officials = officials
        self.register_client_auth_method(
            "private_key_jwt", PrivateKeyJwt(issuer.issuer, token_endpoint, replay)
        )
        self.register_client_auth_method(SELF_SIGNED_TLS_CLIENT_AUTH, SelfSignedTlsClientAuth())
        self.register_grant(ClientCredentials)
        self.register_grant(AuthorizationCode, [S256Only(required=True)])
        self.register_endpoint(Introspection)
        self.register_endpoint(Revocation)

    # -- what the metadata documents are built from -------------------------------------------
    @property
    def grant_types(self) -> list[str]:
        return [g.GRANT_TYPE for g, _ in self._token_grants]

    @property
    def client_auth_methods(self) -> list[str]:
        methods: set[str] = set()
        for grant, _ in self._token_grants:
            methods.update(grant.TOKEN_ENDPOINT_AUTH_METHODS)
        return sorted(methods)

    # -- Authlib framework hooks ------------------------------------------------------------
    def query_client(self, client_id: str) -> Client | None:
        client = self.registry.get(client_id) if isinstance(client_id, str) else None
        return client if client and not client.disabled else None

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        return None  # self-contained JWTs; revocation keeps its own list

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        return request if isinstance(request, OAuth2Request) else _Request(request)

    def create_json_request(self, request: Any) -> Any:
        raise NotImplementedError("no JSON endpoints")

    def handle_response(self, status: int, body: Any, headers: Any) -> HttpResponse:
        return HttpResponse(status, body, list(headers or []))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def authorize(self, request: HttpRequest, user: SignedInUser) -> HttpResponse:
        """Issue a code to a signed-in user; ``iss`` is added to the redirect (RFC 9207 §2)."""
        oauth_request = self.create_oauth2_request(request)
        grant = self.get_consent_grant(request=oauth_request, end_user=user)
        response: HttpResponse = self.create_authorization_response(
            request=oauth_request, grant_user=user, grant=grant
        )
        location = response.location
        if location:
            response.headers = [(k, v) for k, v in response.headers if k.lower() != "location"]
            response.headers.append(
                ("Location", add_params_to_uri(location, [("iss", self.issuer.issuer)]))
            )
        return response


__all__ = [
    "CERTIFICATE_REQUIRED",
    "CLIENT_AUTH_METHODS",
    "CODE_CHALLENGE_METHODS",
    "HttpRequest",
    "HttpResponse",
    "InvalidGrantError",
    "SignedInUser",
    "SijillAuthorizationServer",
]
