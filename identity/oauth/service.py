"""One object holding the authorization server and everything it is made of, per app."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from identity.oauth.clients import CLIENT_ASSERTION_ALGS, ClientRegistry, ClientRegistryError
from identity.oauth.dpop import DPOP_ALGS, DpopVerifier
from identity.oauth.exchange import TokenExchange
from identity.oauth.issuers import OfficialIds, TrustedIssuer, TrustedIssuers
from identity.oauth.keys import SigningKeys
from identity.oauth.login import Authenticator, CitizenTotpAuthenticator, StaffAuthenticator
from identity.oauth.replay import ReplayStore
from identity.oauth.secrets import SecretBox
from identity.oauth.server import CODE_CHALLENGE_METHODS, SijillAuthorizationServer
from identity.oauth.sessions import SessionCookies
from identity.oauth.tokens import (
    ACCESS_TOKEN_ALGS,
    AccessTokenVerifier,
    RevocationList,
    TokenIssuer,
)

# Scopes the server knows; a client is registered with a subset.
SCOPES: tuple[str, ...] = (
    "openid",
    "agency:lookup",
    "agency:query",
    "agency:eligibility",
    "rnp:enrol",
    "rnp:rectify",
    "rsu:register",
    "audit:read",
    "citizen:self",
    "court_order:query",
    "court_order:manage",
)
# OpenID Connect Core §5.4: the UserInfo claims each scope releases. Sijill's portal scopes
# release the subject only; register data is read through the policy-mediated API, never here.
SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {"openid": ("sub",)}


@dataclass
class OAuthService:
    issuer_url: str
    registry: ClientRegistry
    keys: SigningKeys
    replay: ReplayStore
    dpop: DpopVerifier
    issuer: TokenIssuer
    verifier: AccessTokenVerifier
    revocations: RevocationList
    server: SijillAuthorizationServer
    authenticators: dict[str, Authenticator]
    sessions: SessionCookies
    trusted_issuers: TrustedIssuers

    @property
    def citizens(self) -> CitizenTotpAuthenticator:
        authenticator = self.authenticators["citizen"]
        assert isinstance(authenticator, CitizenTotpAuthenticator)
        return authenticator

    def staff(self, kind: str) -> StaffAuthenticator:
        authenticator = self.authenticators[kind]
        assert isinstance(authenticator, StaffAuthenticator)
        return authenticator

    def trust_issuer(self, client_id: str, issuer: str, jwks: Any) -> TrustedIssuer:
        """Let agency ``client_id`` exchange ID tokens of ``issuer`` (signed by ``jwks``) for
        tokens naming its officials (``exchange.py``); again for the same issuer replaces its
        keys. Only agencies: officers and auditors sign in here, with their own accounts."""
        client = self.registry.get(client_id)
        if client is None:
            raise ClientRegistryError("no such client")
        if client.kind != "agency":
            raise ClientRegistryError("only an agency client may trust an identity provider")
        return self.trusted_issuers.trust(client_id, issuer, jwks)

    def endpoint(self, path: str) -> str:
        return self.issuer_url + path

    def metadata(self) -> dict[str, Any]:
        """RFC 8414 metadata, derived from the server's configuration, nothing hand-listed."""
        auth_methods = self.server.client_auth_methods
        return {
            "issuer": self.issuer_url,
            "authorization_endpoint": self.endpoint("/oauth/authorize"),
            "token_endpoint": self.endpoint("/oauth/token"),
            "jwks_uri": self.endpoint("/oauth/jwks"),
            "introspection_endpoint": self.endpoint("/oauth/introspect"),
            "revocation_endpoint": self.endpoint("/oauth/revoke"),
            "scopes_supported": list(SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": self.server.grant_types,
            "token_endpoint_auth_methods_supported": auth_methods,
            "token_endpoint_auth_signing_alg_values_supported": list(CLIENT_ASSERTION_ALGS),
            "introspection_endpoint_auth_methods_supported": auth_methods,
            "introspection_endpoint_auth_signing_alg_values_supported": list(CLIENT_ASSERTION_ALGS),
            "revocation_endpoint_auth_methods_supported": auth_methods,
            "revocation_endpoint_auth_signing_alg_values_supported": list(CLIENT_ASSERTION_ALGS),
            "code_challenge_methods_supported": list(CODE_CHALLENGE_METHODS),
            "dpop_signing_alg_values_supported": list(DPOP_ALGS),
            # RFC 8705 §3.3; the certificate arrives through the same endpoints (a proxy in
            # front asks for it), so there are no mtls_endpoint_aliases.
            "tls_client_certificate_bound_access_tokens": True,
            "authorization_response_iss_parameter_supported": True,
            "ui_locales_supported": ["fr", "ar", "en"],
        }

    def userinfo(self, token_scopes: frozenset[str], subject: str) -> dict[str, Any]:
        """OpenID Connect Core §5.3.2: the claims the token's scopes allow, nothing else."""
        values = {"sub": subject}
        return {
            claim: values[claim]
            for scope in sorted(token_scopes)
            for claim in SCOPE_CLAIMS.get(scope, ())
        }

    def openid_configuration(self) -> dict[str, Any]:
        """OpenID Connect Discovery 1.0 §3: the RFC 8414 document plus the OIDC members."""
        return {
            **self.metadata(),
            "userinfo_endpoint": self.endpoint("/oauth/userinfo"),
            "end_session_endpoint": self.endpoint("/oauth/logout"),
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": list(ACCESS_TOKEN_ALGS),
            "claims_supported": [
                "iss",
                "sub",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "amr",
                "azp",
                "sid",
            ],
        }


def build_oauth_service(
    engine: Engine, keys_dir: Path, issuer_url: str, audience: str | None = None
) -> OAuthService:
    issuer_url = issuer_url.rstrip("/")
    audience = audience or issuer_url
    registry = ClientRegistry(engine)
    keys = SigningKeys(keys_dir)
    replay = ReplayStore(engine)
    revocations = RevocationList(engine)
    issuer = TokenIssuer(keys, issuer_url, audience)
    verifier = AccessTokenVerifier(keys, revocations, issuer_url, audience)
    trusted_issuers = TrustedIssuers(engine)
    server = SijillAuthorizationServer(
        engine=engine,
        registry=registry,
        issuer=issuer,
        verifier=verifier,
        revocations=revocations,
        replay=replay,
        token_endpoint=issuer_url + "/oauth/token",
        trusted_issuers=trusted_issuers,
        officials=OfficialIds(keys_dir / "oauth-officials.key"),
    )
    server.register_grant(TokenExchange)
    box = SecretBox(keys_dir / "oauth-totp.key")
    authenticators: dict[str, Authenticator] = {
        "citizen": CitizenTotpAuthenticator(engine, box),
        "officer": StaffAuthenticator(engine, box, "officer"),
        "auditor": StaffAuthenticator(engine, box, "auditor"),
    }
    return OAuthService(
        issuer_url=issuer_url,
        registry=registry,
        keys=keys,
        replay=replay,
        dpop=DpopVerifier(replay),
        issuer=issuer,
        verifier=verifier,
        revocations=revocations,
        server=server,
        authenticators=authenticators,
        sessions=SessionCookies(box),
        trusted_issuers=trusted_issuers,
    )
