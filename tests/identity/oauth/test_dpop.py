"""DPoP (RFC 9449): a bound token is useless without a fresh proof by the bound key."""

from __future__ import annotations

from typing import Any

import pytest

from identity.oauth import make_proof
from tests.identity.oauth.conftest import assert_problem, new_key, token_request


@pytest.fixture
def holder():  # type: ignore[no-untyped-def]
    key, public, _ = new_key()
    public.pop("kid")
    return key, public


@pytest.fixture
def bound(api, agency, holder, settings):  # type: ignore[no-untyped-def]
    key, public = holder
    proof = make_proof(key, public, method="POST", url=f"{settings.issuer}/oauth/token")
    response = token_request(api, agency, dpop=proof)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "DPoP"
    return body["access_token"]


def _call(api: Any, token: str, proof: str | None) -> Any:
    headers = {"Authorization": f"DPoP {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    return api.get("/test/lookup", headers=headers)


def test_bound_token_with_matching_proof_is_accepted(api, bound, holder, settings):  # type: ignore[no-untyped-def]
    key, public = holder
    proof = make_proof(
        key, public, method="GET", url=f"{settings.issuer}/test/lookup?x=1", access_token=bound
    )
    assert _call(api, bound, proof).status_code == 200


def test_token_carries_thumbprint_of_proof_key(bound, holder):  # type: ignore[no-untyped-def]
    import jwt

    from identity.oauth import jwk_thumbprint

    claims = jwt.decode(bound, options={"verify_signature": False})
    assert claims["cnf"] == {"jkt": jwk_thumbprint(holder[1])}


def test_proof_for_wrong_method_is_rejected(api, bound, holder, settings):  # type: ignore[no-untyped-def]
    key, public = holder
    proof = make_proof(
        key, public, method="POST", url=f"{settings.issuer}/test/lookup", access_token=bound
    )
    response = _call(api, bound, proof)
    body = assert_problem(response, 401)
    assert body["type"].endswith("/invalid-dpop-proof")
    assert response.headers["www-authenticate"].startswith("DPoP ")


def test_proof_for_wrong_url_is_rejected(api, bound, holder, settings):  # type: ignore[no-untyped-def]
    key, public = holder
    proof = make_proof(
        key, public, method="GET", url=f"{settings.issuer}/test/me", access_token=bound
    )
    assert_problem(_call(api, bound, proof), 401)


def test_replayed_proof_jti_is_rejected(api, bound, holder, settings):  # type: ignore[no-untyped-def]
    key, public = holder
    proof = make_proof(
        key, public, method="GET", url=f"{settings.issuer}/test/lookup", access_token=bound
    )
    assert _call(api, bound, proof).status_code == 200
    assert_problem(_call(api, bound, proof), 401)


def test_proof_without_ath_is_rejected(api, bound, holder, settings):  # type: ignore[no-untyped-def]
    key, public = holder
    proof = make_proof(key, public, method="GET", url=f"{settings.issuer}/test/lookup")
    assert_problem(_call(api, bound, proof), 401)


def test_proof_by_another_key_is_rejected(api, bound, settings):  # type: ignore[no-untyped-def]
    thief, public, _ = new_key()
    proof = make_proof(
        thief, public, method="GET", url=f"{settings.issuer}/test/lookup", access_token=bound
    )
    assert_problem(_call(api, bound, proof), 401)


def test_old_proof_is_rejected(api, bound, holder, settings):  # type: ignore[no-untyped-def]
    import time

    key, public = holder
    proof = make_proof(
        key,
        public,
        method="GET",
        url=f"{settings.issuer}/test/lookup",
        access_token=bound,
        iat=int(time.time()) - 600,
    )
    assert_problem(_call(api, bound, proof), 401)


def test_bound_token_presented_as_bearer_is_rejected(api, bound):  # type: ignore[no-untyped-def]
    response = api.get("/test/lookup", headers={"Authorization": f"Bearer {bound}"})
    assert_problem(response, 401)


def test_bound_token_without_proof_is_rejected(api, bound):  # type: ignore[no-untyped-def]
    assert_problem(_call(api, bound, None), 401)


def test_invalid_proof_at_token_endpoint_is_rejected(api, agency, holder, settings):  # type: ignore[no-untyped-def]
    key, public = holder
    proof = make_proof(key, public, method="GET", url=f"{settings.issuer}/oauth/token")
    body = assert_problem(token_request(api, agency, dpop=proof), 400)
    assert body["error"] == "invalid_dpop_proof"


def test_htu_normalisation_ignores_query_fragment_and_default_port() -> None:
    from identity.oauth import normalise_htu

    assert normalise_htu("HTTPS://Api.Example:443/a/b?q=1#f") == "https://api.example/a/b"
    assert normalise_htu("http://h:8000/x") == "http://h:8000/x"


@pytest.mark.parametrize("alg", ["Ed25519", "EdDSA"])
def test_ed25519_proof_binds_a_token_under_either_name(api, agency, settings, alg):  # type: ignore[no-untyped-def]
    key, public, _ = new_key("EdDSA")
    public.pop("kid")
    url = f"{settings.issuer}/oauth/token"
    response = token_request(
        api, agency, dpop=make_proof(key, public, method="POST", url=url, alg=alg)
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    proof = make_proof(
        key, public, method="GET", url=f"{settings.issuer}/test/lookup", access_token=token, alg=alg
    )
    assert _call(api, token, proof).status_code == 200
