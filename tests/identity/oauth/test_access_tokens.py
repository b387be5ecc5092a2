"""The resource side: every forged or stale access token is refused with problem+json.

Each forgery is built with the real server key (so only the one property under test is
wrong) or, for the key tests, with a key the server does not hold.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from tests.identity.oauth.conftest import assert_problem, new_key, token_request


def _claims(oauth: Any, agency: Any, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": oauth.issuer_url,
        "sub": agency.client_id,
        "aud": oauth.issuer_url,
        "client_id": agency.client_id,
        "scope": "agency:lookup",
        "jti": f"t{now}",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _server_signed(oauth: Any, claims: dict[str, Any], typ: str = "at+jwt") -> str:
    """``claims`` signed as the server signs (its key, its signer: s in canonical form)."""
    from identity.oauth.jose import sign_jwt

    key = oauth.keys.current()
    return sign_jwt(claims, key.private_key, kid=key.kid, typ=typ)


def _call(api: Any, token: str) -> Any:
    return api.get("/test/lookup", headers={"Authorization": f"Bearer {token}"})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_genuine_token_is_accepted(api, oauth, agency):  # type: ignore[no-untyped-def]
    # The control for every forgery below: only the property under test differs.
    assert _call(api, _server_signed(oauth, _claims(oauth, agency))).status_code == 200


def test_alg_none_is_rejected(api, oauth, agency):  # type: ignore[no-untyped-def]
    header = _b64(
        json.dumps({"alg": "none", "typ": "at+jwt", "kid": oauth.keys.current().kid}).encode()
    )
    payload = _b64(json.dumps(_claims(oauth, agency)).encode())
    body = assert_problem(_call(api, f"{header}.{payload}."), 401)
    assert 'error="invalid_token"' in _call(api, f"{header}.{payload}.").headers["www-authenticate"]
    assert body["type"].endswith("/invalid-token")


def test_hs256_signed_with_server_public_key_is_rejected(api, oauth, agency):  # type: ignore[no-untyped-def]
    # The classic key-confusion attack: HMAC keyed with the PEM the server publishes.
    public_pem = (
        oauth.keys.current()
        .private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = _b64(
        json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": oauth.keys.current().kid}).encode()
    )
    payload = _b64(json.dumps(_claims(oauth, agency)).encode())
    signature = _b64(hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    assert_problem(_call(api, f"{header}.{payload}.{signature}"), 401)


def test_unknown_kid_is_rejected(api, oauth, agency):  # type: ignore[no-untyped-def]
    stranger, _, _ = new_key()
    token = jwt.encode(
        _claims(oauth, agency),
        stranger,
        algorithm="ES256",
        headers={"typ": "at+jwt", "kid": "not-ours"},
    )
    assert_problem(_call(api, token), 401)


def test_known_kid_with_foreign_signature_is_rejected(api, oauth, agency):  # type: ignore[no-untyped-def]
    stranger, _, _ = new_key()
    token = jwt.encode(
        _claims(oauth, agency),
        stranger,
        algorithm="ES256",
        headers={"typ": "at+jwt", "kid": oauth.keys.current().kid},
    )
    assert_problem(_call(api, token), 401)


def test_expired_token_is_rejected(api, oauth, agency):  # type: ignore[no-untyped-def]
    now = int(time.time())
    token = _server_signed(
        oauth, _claims(oauth, agency, iat=now - 400, nbf=now - 400, exp=now - 60)
    )
    body = assert_problem(_call(api, token), 401)
    assert "expired" in body["detail"]


def test_token_not_valid_yet_is_rejected(api, oauth, agency):  # type: ignore[no-untyped-def]
    token = _server_signed(oauth, _claims(oauth, agency, nbf=int(time.time()) + 120))
    assert_problem(_call(api, token), 401)


def test_wrong_issuer_is_rejected(api, oauth, agency):  # type: ignore[no-untyped-def]
    token = _server_signed(oauth, _claims(oauth, agency, iss="https://evil.example"))
    assert_problem(_call(api, token), 401)


def test_wrong_audience_is_rejected(api, oauth, agency):  # type: ignore[no-untyped-def]
    token = _server_signed(oauth, _claims(oauth, agency, aud="https://other-api.example"))
    assert_problem(_call(api, token), 401)


def test_typ_other_than_at_jwt_is_rejected(api, oauth, agency):  # type: ignore[no-untyped-def]
    # An ID token (typ JWT) signed by the same key must not pass as an access token.
    token = _server_signed(oauth, _claims(oauth, agency), typ="JWT")
    assert_problem(_call(api, token), 401)


def test_missing_token_gets_both_challenges(api):  # type: ignore[no-untyped-def]
    response = api.get("/test/lookup")
    assert_problem(response, 401)
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ") and "DPoP " in challenge


def test_token_without_required_scope_gets_403_insufficient_scope(api, agency):  # type: ignore[no-untyped-def]
    token = token_request(api, agency, scope="agency:query").json()["access_token"]
    response = _call(api, token)
    body = assert_problem(response, 403)
    assert body["type"].endswith("/insufficient-scope")
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


def test_wrong_kind_of_caller_gets_403(api, oauth):  # type: ignore[no-untyped-def]
    from tests.identity.oauth.conftest import register

    office = register(oauth, kind="office", scopes="rnp:enrol agency:lookup")
    token = token_request(api, office).json()["access_token"]
    assert_problem(_call(api, token), 403)
    assert (
        api.get("/test/me", headers={"Authorization": f"Bearer {token}"}).json()["kind"] == "office"
    )


def test_revoked_token_is_rejected(api, agency, settings):  # type: ignore[no-untyped-def]
    from tests.identity.oauth.conftest import client_assertion

    token = token_request(api, agency).json()["access_token"]
    assert _call(api, token).status_code == 200
    response = api.post(
        "/oauth/revoke",
        data={
            "token": token,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": client_assertion(agency, settings.issuer),
        },
    )
    assert response.status_code == 200, response.text
    body = assert_problem(_call(api, token), 401)
    assert "revoked" in body["detail"]


def test_another_client_cannot_revoke_a_token(api, oauth, agency, settings):  # type: ignore[no-untyped-def]
    from tests.identity.oauth.conftest import client_assertion, register

    token = token_request(api, agency).json()["access_token"]
    other = register(oauth, sector="health")
    response = api.post(
        "/oauth/revoke",
        data={
            "token": token,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": client_assertion(other, settings.issuer),
        },
    )
    assert_problem(response, 400)
    assert _call(api, token).status_code == 200


def test_introspection_reports_active_then_inactive_after_revocation(api, agency, settings):  # type: ignore[no-untyped-def]
    from tests.identity.oauth.conftest import client_assertion

    token = token_request(api, agency).json()["access_token"]

    def introspect() -> dict[str, Any]:
        response = api.post(
            "/oauth/introspect",
            data={
                "token": token,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": client_assertion(agency, settings.issuer),
            },
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    active = introspect()
    assert active["active"] is True and active["client_id"] == agency.client_id
    api.post(
        "/oauth/revoke",
        data={
            "token": token,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": client_assertion(agency, settings.issuer),
        },
    )
    assert introspect() == {"active": False}


def test_introspection_requires_client_authentication(api, agency):  # type: ignore[no-untyped-def]
    token = token_request(api, agency).json()["access_token"]
    assert_problem(api.post("/oauth/introspect", data={"token": token}), 401)


def test_rotated_keys_keep_previous_tokens_valid(api, oauth, agency):  # type: ignore[no-untyped-def]
    token = token_request(api, agency).json()["access_token"]
    old_kid = oauth.keys.current().kid
    new = oauth.keys.rotate()
    kids = [k["kid"] for k in api.get("/oauth/jwks").json()["keys"]]
    assert kids == [new.kid, old_kid]
    assert _call(api, token).status_code == 200
    fresh = token_request(api, agency).json()["access_token"]
    assert jwt.get_unverified_header(fresh)["kid"] == new.kid


def test_signing_key_file_is_owner_only(api, oauth, settings):  # type: ignore[no-untyped-def]
    kid = oauth.keys.current().kid
    path = settings.data_dir / "keys" / f"oauth-signing-{kid}.pem"
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_token_accepted_once_is_refused_once_it_expires(api, oauth, agency, monkeypatch):  # type: ignore[no-untyped-def]
    # The verifier keeps tokens whose signature it checked; expiry is still checked per use.
    token = _server_signed(oauth, _claims(oauth, agency, exp=int(time.time()) + 60))
    assert _call(api, token).status_code == 200
    later = time.time() + 120
    monkeypatch.setattr("identity.oauth.tokens.time.time", lambda: later)
    body = assert_problem(_call(api, token), 401)
    assert "expired" in body["detail"]


def test_a_token_accepted_once_is_refused_once_its_key_is_no_longer_published(api, oauth, agency):  # type: ignore[no-untyped-def]
    token = token_request(api, agency).json()["access_token"]
    assert _call(api, token).status_code == 200
    oauth.keys.rotate()
    oauth.keys.rotate()  # the token's key is now neither current nor previous
    body = assert_problem(_call(api, token), 401)
    assert "unknown key" in body["detail"]
