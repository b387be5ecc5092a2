"""Client credentials with private_key_jwt (RFC 7523), from an agency program's point of view."""

from __future__ import annotations

from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from joserfc.jwk import ECKey

from tests.identity.oauth.conftest import (
    assert_problem,
    client_assertion,
    new_key,
    register,
    token_request,
)


class FiveMinuteAssertion(PrivateKeyJWT):  # type: ignore[misc]
    """Authlib signs hour-long assertions by default; FAPI 2.0 servers refuse those."""

    alg = "ES256"

    def sign(self, auth, token_endpoint):  # type: ignore[no-untyped-def]
        return private_key_jwt_sign(
            auth.client_secret,
            client_id=auth.client_id,
            token_endpoint=token_endpoint,
            alg=self.alg,
            expires_in=60,
        )


def test_agency_program_with_authlib_client_gets_token_and_calls_protected_route(
    api, oauth, agency, settings
):  # type: ignore[no-untyped-def]
    token_endpoint = f"{settings.issuer}/oauth/token"
    program = OAuth2Client(
        client_id=agency.client_id,
        client_secret=ECKey.import_key(agency.private_jwk),
        token_endpoint_auth_method="private_key_jwt",
        scope="agency:lookup",
        base_url=settings.issuer,
        transport=api._transport,
    )
    program.register_client_auth_method(FiveMinuteAssertion(token_endpoint))
    token = program.fetch_token(token_endpoint, grant_type="client_credentials")
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "agency:lookup"

    response = program.get("/test/lookup")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "kind": "agency",
        "client_id": agency.client_id,
        "sector": "social",
        "subject": agency.client_id,
        "scopes": ["agency:lookup"],
        "purposes": ["asd_payment"],
    }


def test_access_token_is_rfc9068_jwt_signed_by_published_key(api, agency, settings):  # type: ignore[no-untyped-def]
    import jwt

    body = token_request(api, agency).json()
    header = jwt.get_unverified_header(body["access_token"])
    assert header["typ"] == "at+jwt" and header["alg"] == "ES256"
    jwks = api.get("/oauth/jwks").json()
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    claims = jwt.decode(
        body["access_token"],
        key,
        algorithms=["ES256"],
        audience=settings.issuer,
        issuer=settings.issuer,
    )
    assert claims["client_id"] == claims["sub"] == agency.client_id
    assert claims["exp"] - claims["iat"] == body["expires_in"] <= 300
    assert {"iss", "sub", "aud", "client_id", "scope", "jti", "iat", "exp"} <= set(claims)
    for public in jwks["keys"]:
        assert "d" not in public


def test_ed25519_client_assertion_is_accepted_under_its_rfc_9864_name(api, oauth, settings):  # type: ignore[no-untyped-def]
    import secrets
    import time

    from joserfc import jwt as jose_jwt
    from joserfc.jwk import OKPKey

    agent = register(oauth, alg="EdDSA")  # an Ed25519 key pair
    now = int(time.time())
    claims = {
        "iss": agent.client_id,
        "sub": agent.client_id,
        "aud": f"{settings.issuer}/oauth/token",
        "jti": secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + 60,
    }
    assertion = jose_jwt.encode(
        {"alg": "Ed25519", "kid": agent.public_jwk["kid"]},
        claims,
        OKPKey.import_key(agent.private_jwk),
        algorithms=["Ed25519"],
    )
    assert token_request(api, agent, assertion=assertion).status_code == 200


def test_ed25519_client_assertion_under_the_deprecated_eddsa_name_is_still_accepted(api, oauth):  # type: ignore[no-untyped-def]
    agent = register(oauth, alg="EdDSA")
    assert token_request(api, agent).status_code == 200


def test_issuer_is_accepted_as_assertion_audience(api, agency, settings):  # type: ignore[no-untyped-def]
    assertion = client_assertion(agency, settings.issuer)
    assert token_request(api, agency, assertion=assertion).status_code == 200


def test_replayed_client_assertion_is_rejected(api, agency, settings):  # type: ignore[no-untyped-def]
    assertion = client_assertion(agency, f"{settings.issuer}/oauth/token")
    assert token_request(api, agency, assertion=assertion).status_code == 200
    body = assert_problem(token_request(api, agency, assertion=assertion), 401)
    assert body["error"] == "invalid_client"


def test_replay_store_survives_a_restart(oauth_app, agency, settings):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from gateway.app import create_app

    assertion = client_assertion(agency, f"{settings.issuer}/oauth/token")
    with TestClient(oauth_app, base_url=settings.issuer) as first:
        assert token_request(first, agency, assertion=assertion).status_code == 200
    restarted = create_app(settings)  # a fresh process: nothing shared but the database
    try:
        with TestClient(restarted, base_url=settings.issuer) as second:
            assert_problem(token_request(second, agency, assertion=assertion), 401)
    finally:
        restarted.state.services.close()


def test_assertion_signed_by_another_clients_key_is_rejected(api, oauth, agency, settings):  # type: ignore[no-untyped-def]
    other = register(oauth, sector="health")
    forged = client_assertion(
        agency,
        f"{settings.issuer}/oauth/token",
        key=other.private_key,
        kid=agency.public_jwk["kid"],
    )
    body = assert_problem(token_request(api, agency, assertion=forged), 401)
    assert body["error"] == "invalid_client"


def test_assertion_living_longer_than_five_minutes_is_rejected(api, agency, settings):  # type: ignore[no-untyped-def]
    assertion = client_assertion(agency, f"{settings.issuer}/oauth/token", lifetime=3600)
    assert_problem(token_request(api, agency, assertion=assertion), 401)


def test_assertion_for_another_audience_is_rejected(api, agency):  # type: ignore[no-untyped-def]
    assertion = client_assertion(agency, "https://other.example/oauth/token")
    assert_problem(token_request(api, agency, assertion=assertion), 401)


def test_assertion_with_hmac_algorithm_is_rejected(api, agency, settings):  # type: ignore[no-untyped-def]
    import time

    import jwt

    now = int(time.time())
    claims = {
        "iss": agency.client_id,
        "sub": agency.client_id,
        "jti": "x1",
        "iat": now,
        "exp": now + 60,
        "aud": f"{settings.issuer}/oauth/token",
    }
    forged = jwt.encode(claims, agency.public_jwk["x"], algorithm="HS256")
    assert_problem(token_request(api, agency, assertion=forged), 401)


def test_scope_not_granted_is_rejected(api, agency):  # type: ignore[no-untyped-def]
    body = assert_problem(token_request(api, agency, scope="agency:lookup rnp:enrol"), 400)
    assert body["error"] == "invalid_scope"


def test_disabled_client_gets_no_token_and_its_tokens_stop_working(api, oauth, agency):  # type: ignore[no-untyped-def]
    token = token_request(api, agency).json()["access_token"]
    oauth.registry.set_disabled(agency.client_id)
    assert_problem(token_request(api, agency), 401)
    assert_problem(api.get("/test/lookup", headers={"Authorization": f"Bearer {token}"}), 401)


def test_token_endpoint_refuses_unknown_grant(api, agency, settings):  # type: ignore[no-untyped-def]
    response = api.post(
        "/oauth/token", data={"grant_type": "password", "username": "x", "password": "y"}
    )
    assert_problem(response, 400)


def test_client_registry_refuses_private_keys(oauth):  # type: ignore[no-untyped-def]
    import pytest

    from identity.oauth import ClientRegistryError

    _, _, private = new_key()
    with pytest.raises(ClientRegistryError):
        oauth.registry.add(
            name="leaky",
            kind="agency",
            sector="social",
            jwks={"keys": [private]},
            scopes="agency:lookup",
        )
