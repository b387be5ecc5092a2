"""The OAuth 2.0 / OpenID Connect authorization server (FAPI 2.0 security profile).

Owns: the client registry (agencies, registration offices, auditors, the citizen portal), the
signing keys for access and ID tokens, the replay and revocation stores, DPoP (RFC 9449),
mutual-TLS client certificates (RFC 8705: certificate-bound tokens, certificate client
authentication), the identity providers agencies trust for their officials and the token
exchange (RFC 8693) that names the acting official and case in an agency's token, and the
sign-in of citizens (IDCS + TOTP), officers and auditors (password + TOTP).
May import: Authlib, joserfc, pyjwt, cryptography, pyotp, argon2, SQLAlchemy; nothing of
Sijill outside ``identity.oauth``. Must never: store a client's private key or a shared
secret, accept an unsigned or HMAC-signed token, store a TOTP secret in clear, or put
personal data other than the subject's IDCS into a token.
"""

from identity.oauth.clients import (
    CLIENT_ASSERTION_ALGS,
    CLIENT_KINDS,
    Client,
    ClientKind,
    ClientRegistry,
    ClientRegistryError,
    validate_public_jwks,
)
from identity.oauth.dpop import (
    DPOP_ALGS,
    DpopError,
    DpopProof,
    DpopVerifier,
    access_token_hash,
    jwk_thumbprint,
    make_proof,
    normalise_htu,
)
from identity.oauth.exchange import (
    CASE_PARAMETER,
    ID_TOKEN_TYPE,
    TOKEN_EXCHANGE,
    TokenExchange,
)
from identity.oauth.issuers import (
    OFFICIAL_ID_PATTERN,
    OfficialIds,
    TrustedIssuer,
    TrustedIssuers,
    validate_issuer,
)
from identity.oauth.keys import SigningKey, SigningKeys
from identity.oauth.login import (
    Authenticator,
    CitizenTotpAuthenticator,
    LoginFailed,
    StaffAuthenticator,
)
from identity.oauth.mtls import (
    SELF_SIGNED_TLS_CLIENT_AUTH,
    CertificateError,
    certificate_thumbprint,
    parse_forwarded_certificate,
)
from identity.oauth.replay import ReplayStore
from identity.oauth.server import (
    CERTIFICATE_REQUIRED,
    CLIENT_AUTH_METHODS,
    CODE_CHALLENGE_METHODS,
    HttpRequest,
    HttpResponse,
    SignedInUser,
    SijillAuthorizationServer,
)
from identity.oauth.service import SCOPES, OAuthService, build_oauth_service
from identity.oauth.sessions import SessionCookies
from identity.oauth.tokens import (
    ACCESS_TOKEN_ALGS,
    AccessToken,
    AccessTokenVerifier,
    InvalidToken,
    RevocationList,
    TokenIssuer,
)

__all__ = [
    "ACCESS_TOKEN_ALGS",
    "CASE_PARAMETER",
    "CERTIFICATE_REQUIRED",
    "CLIENT_ASSERTION_ALGS",
    "CLIENT_AUTH_METHODS",
    "CLIENT_KINDS",
    "CODE_CHALLENGE_METHODS",
    "DPOP_ALGS",
    "ID_TOKEN_TYPE",
    "OFFICIAL_ID_PATTERN",
    "SCOPES",
    "SELF_SIGNED_TLS_CLIENT_AUTH",
    "TOKEN_EXCHANGE",
    "AccessToken",
    "AccessTokenVerifier",
    "Authenticator",
    "CertificateError",
    "CitizenTotpAuthenticator",
    "Client",
    "ClientKind",
    "ClientRegistry",
    "ClientRegistryError",
    "DpopError",
    "DpopProof",
    "DpopVerifier",
    "HttpRequest",
    "HttpResponse",
    "InvalidToken",
    "LoginFailed",
    "OAuthService",
    "OfficialIds",
    "ReplayStore",
    "RevocationList",
    "SessionCookies",
    "SignedInUser",
    "SigningKey",
    "SigningKeys",
    "SijillAuthorizationServer",
    "StaffAuthenticator",
    "TokenExchange",
    "TokenIssuer",
    "TrustedIssuer",
    "TrustedIssuers",
    "access_token_hash",
    "build_oauth_service",
    "certificate_thumbprint",
    "jwk_thumbprint",
    "make_proof",
    "normalise_htu",
    "parse_forwarded_certificate",
    "validate_issuer",
    "validate_public_jwks",
]
