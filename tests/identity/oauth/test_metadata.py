"""The discovery documents state exactly what the server is configured to do."""

from __future__ import annotations

from identity.oauth import (
    ACCESS_TOKEN_ALGS,
    CLIENT_ASSERTION_ALGS,
    CODE_CHALLENGE_METHODS,
    DPOP_ALGS,
)


def _configured(oauth):  # type: ignore[no-untyped-def]
    server = oauth.server
    grants = sorted(g.GRANT_TYPE for g, _ in server._token_grants)
    methods = sorted({m for g, _ in server._token_grants for m in g.TOKEN_ENDPOINT_AUTH_METHODS})
    endpoint_methods = {
        name: sorted({m for e in endpoints for m in e.CLIENT_AUTH_METHODS})
        for name, endpoints in server._endpoints.items()
    }
    return grants, methods, endpoint_methods


def test_authorization_server_metadata_matches_configuration(api, oauth, settings):  # type: ignore[no-untyped-def]
    meta = api.get("/.well-known/oauth-authorization-server").json()
    grants, methods, endpoint_methods = _configured(oauth)
    assert meta["issuer"] == settings.issuer
    assert sorted(meta["grant_types_supported"]) == grants
    assert sorted(meta["token_endpoint_auth_methods_supported"]) == methods
    assert (
        sorted(meta["introspection_endpoint_auth_methods_supported"])
        == endpoint_methods["introspection"]
    )
    assert (
        sorted(meta["revocation_endpoint_auth_methods_supported"]) == endpoint_methods["revocation"]
    )
    assert meta["token_endpoint_auth_signing_alg_values_supported"] == list(CLIENT_ASSERTION_ALGS)
    assert meta["dpop_signing_alg_values_supported"] == list(DPOP_ALGS)
    assert meta["code_challenge_methods_supported"] == list(CODE_CHALLENGE_METHODS) == ["S256"]
    assert "none" not in meta["token_endpoint_auth_methods_supported"]
    assert "client_secret_basic" not in meta["token_endpoint_auth_methods_supported"]


def test_every_advertised_endpoint_answers(api, settings):  # type: ignore[no-untyped-def]
    meta = api.get("/.well-known/oauth-authorization-server").json()
    for name in ("token_endpoint", "introspection_endpoint", "revocation_endpoint"):
        path = meta[name].removeprefix(settings.issuer)
        assert api.post(path, data={}).status_code in {400, 401}
    assert api.get(meta["jwks_uri"].removeprefix(settings.issuer)).status_code == 200
    assert (
        api.get(meta["authorization_endpoint"].removeprefix(settings.issuer)).status_code == 400
    )  # no parameters: an invalid request, but it is there


def test_metadata_advertises_ed25519_never_the_deprecated_eddsa(api):  # type: ignore[no-untyped-def]
    oidc = api.get("/.well-known/openid-configuration").json()
    advertised = [v for k, v in oidc.items() if k.endswith("alg_values_supported")]
    assert advertised and all("EdDSA" not in algs for algs in advertised)  # RFC 9864 §2
    assert "Ed25519" in oidc["token_endpoint_auth_signing_alg_values_supported"]
    assert "Ed25519" in oidc["dpop_signing_alg_values_supported"]
    challenge = api.get("/test/me").headers["www-authenticate"]
    assert "EdDSA" not in challenge and "Ed25519" in challenge


def test_openid_configuration_extends_the_metadata(api):  # type: ignore[no-untyped-def]
    meta = api.get("/.well-known/oauth-authorization-server").json()
    oidc = api.get("/.well-known/openid-configuration").json()
    assert {k: oidc[k] for k in meta} == meta
    assert oidc["id_token_signing_alg_values_supported"] == list(ACCESS_TOKEN_ALGS)
    assert oidc["response_types_supported"] == ["code"]


def test_published_jwks_verify_algorithm_is_the_advertised_one(api):  # type: ignore[no-untyped-def]
    keys = api.get("/oauth/jwks").json()["keys"]
    assert keys and {k["alg"] for k in keys} == set(ACCESS_TOKEN_ALGS)
