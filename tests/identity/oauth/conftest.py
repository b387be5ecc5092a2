"""Fixtures for the authorization server: an app with protected test routes, clients, keys."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from fastapi import Depends
from fastapi.testclient import TestClient
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

from identity.oauth import OAuthService


@dataclass
class Agent:
    """A registered client and the private key only it holds."""

    client_id: str
    private_key: Any
    public_jwk: dict[str, Any]
    private_jwk: dict[str, Any]
    alg: str


def new_key(
    alg: str = "ES256", kid: str | None = None
) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    kid = kid or secrets.token_hex(4)
    if alg == "ES256":
        key: Any = ec.generate_private_key(ec.SECP256R1())
        private = ECAlgorithm.to_jwk(key, as_dict=True)
        public = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    else:
        key = ed25519.Ed25519PrivateKey.generate()
        private = OKPAlgorithm.to_jwk(key, as_dict=True)
        public = OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return key, {**public, "kid": kid}, {**private, "kid": kid}


@pytest.fixture
def oauth_app(settings):  # type: ignore[no-untyped-def]
    from gateway.app import create_app
    from gateway.auth import Principal, require_principal

    settings.prepare_data_dir()
    app = create_app(settings)
    services = app.state.services

    # Tiny protected routes standing in for the registry API.
    @app.get("/test/lookup")
    def lookup(
        principal: Principal = Depends(
            require_principal(kinds=["agency"], scopes=["agency:lookup"])
        ),
    ) -> dict[str, Any]:
        return {
            "kind": principal.kind,
            "client_id": principal.client_id,
            "sector": principal.sector,
            "subject": principal.subject,
            "scopes": sorted(principal.scopes),
            "purposes": sorted(principal.purposes),
        }

    @app.get("/test/me")
    def me(principal: Principal = Depends(require_principal())) -> dict[str, Any]:
        return {
            "kind": principal.kind,
            "subject": principal.subject,
            "actor": principal.actor,
            "client_id": principal.client_id,
        }

    yield app
    services.close()


@pytest.fixture
def oauth(oauth_app) -> OAuthService:  # type: ignore[no-untyped-def]
    service: OAuthService = oauth_app.state.services.oauth
    return service


@pytest.fixture
def api(oauth_app, settings):  # type: ignore[no-untyped-def]
    # The public URL is the issuer's: DPoP htu and assertion audiences are checked against it.
    with TestClient(oauth_app, base_url=settings.issuer, raise_server_exceptions=False) as c:
        yield c


def register(
    oauth: OAuthService,
    *,
    kind: str = "agency",
    sector: str = "social",
    scopes: str = "agency:lookup agency:query",
    purposes: str = "asd_payment",
    alg: str = "ES256",
    redirect_uris: tuple[str, ...] = (),
) -> Agent:
    key, public, private = new_key(alg)
    client = oauth.registry.add(
        name=f"{kind} {sector}",
        kind=kind,
        sector=sector,
        jwks={"keys": [public]},
        scopes=scopes,
        purposes=purposes,
        redirect_uris=redirect_uris,
    )
    return Agent(client.client_id, key, public, private, alg)


@pytest.fixture
def agency(oauth: OAuthService) -> Agent:
    return register(oauth)


IDCS = "1234567890"
REDIRECT = "https://portal.example/callback"


@pytest.fixture
def portal(oauth: OAuthService) -> Agent:
    return register(
        oauth,
        kind="portal",
        sector="citizen",
        scopes="openid citizen:self",
        purposes="",
        redirect_uris=(REDIRECT,),
    )


@pytest.fixture
def citizen_secret(oauth: OAuthService) -> str:
    return str(oauth.citizens.enrol(IDCS))


def client_assertion(
    agent: Agent,
    audience: str,
    *,
    lifetime: int = 60,
    jti: str | None = None,
    key: Any = None,
    kid: str | None = None,
    iat: int | None = None,
) -> str:
    now = int(time.time()) if iat is None else iat
    claims = {
        "iss": agent.client_id,
        "sub": agent.client_id,
        "aud": audience,
        "jti": jti or secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + lifetime,
    }
    return jwt.encode(
        claims,
        key or agent.private_key,
        algorithm=agent.alg,
        headers={"kid": kid or agent.public_jwk["kid"]},
    )


def token_request(
    api: TestClient,
    agent: Agent,
    *,
    scope: str | None = None,
    assertion: str | None = None,
    dpop: str | None = None,
) -> Any:
    token_endpoint = api.base_url.join("/oauth/token")
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion or client_assertion(agent, str(token_endpoint)),
    }
    if scope:
        data["scope"] = scope
    headers = {"DPoP": dpop} if dpop else {}
    return api.post("/oauth/token", data=data, headers=headers)


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body
