"""Authorization code + PKCE + OpenID Connect: citizens, officers and auditors sign in."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pyotp
import pytest

from tests.identity.oauth.conftest import (
    IDCS,
    REDIRECT,
    Agent,
    assert_problem,
    client_assertion,
    register,
)


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def _params(client: Agent, challenge: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid citizen:self",
        "state": "st-1",
        "nonce": "n-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match
    return match.group(1)


def _sign_in(api: Any, params: dict[str, str], **fields: str) -> Any:
    page = api.get("/oauth/authorize", params=params)
    assert page.status_code == 200, page.text
    return api.post(
        "/oauth/authorize",
        data={**params, "csrf": _csrf(page.text), **fields},
        follow_redirects=False,
    )


def _redeem(api: Any, client: Agent, code: str, verifier: str, settings: Any) -> Any:
    return api.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": client_assertion(client, settings.issuer),
        },
    )


def test_citizen_signs_in_with_idcs_and_totp_and_portal_gets_tokens(
    api, oauth, portal, citizen_secret, settings
):  # type: ignore[no-untyped-def]
    verifier, challenge = _pkce()
    response = _sign_in(
        api, _params(portal, challenge), idcs=IDCS, code=pyotp.TOTP(citizen_secret).now()
    )
    assert response.status_code == 303, response.text
    location = urlsplit(response.headers["location"])
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    assert query["state"] == "st-1" and query["iss"] == settings.issuer  # RFC 9207
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie

    tokens = _redeem(api, portal, query["code"], verifier, settings)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    id_token = jwt.decode(body["id_token"], options={"verify_signature": False})
    assert id_token["sub"] == IDCS and id_token["aud"] == portal.client_id
    assert id_token["nonce"] == "n-1" and id_token["iss"] == settings.issuer
    me = api.get("/test/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json() == {
        "kind": "citizen",
        "subject": IDCS,
        "actor": None,
        "client_id": portal.client_id,
    }

    # The code is single use.
    assert_problem(_redeem(api, portal, query["code"], verifier, settings), 400)


def test_wrong_pkce_verifier_is_rejected(api, portal, citizen_secret, settings):  # type: ignore[no-untyped-def]
    _, challenge = _pkce()
    response = _sign_in(
        api, _params(portal, challenge), idcs=IDCS, code=pyotp.TOTP(citizen_secret).now()
    )
    code = parse_qs(urlsplit(response.headers["location"]).query)["code"][0]
    other_verifier, _ = _pkce()
    assert_problem(_redeem(api, portal, code, other_verifier, settings), 400)


@pytest.mark.parametrize("method", ["plain", None])
def test_authorization_request_without_s256_pkce_is_refused(api, portal, method):  # type: ignore[no-untyped-def]
    _, challenge = _pkce()
    params = _params(portal, challenge)
    if method is None:
        del params["code_challenge_method"]
    else:
        params["code_challenge_method"] = method
    assert api.get("/oauth/authorize", params=params).status_code == 400


def test_unregistered_redirect_uri_is_refused_without_redirecting(api, portal):  # type: ignore[no-untyped-def]
    _, challenge = _pkce()
    params = _params(portal, challenge, redirect_uri="https://evil.example/cb")
    response = api.get("/oauth/authorize", params=params, follow_redirects=False)
    assert response.status_code == 400 and "location" not in response.headers


def test_repeated_failed_citizen_logins_lock_the_account(api, oauth, portal, citizen_secret):  # type: ignore[no-untyped-def]
    from identity.oauth.login import MAX_FAILURES

    _, challenge = _pkce()
    params = _params(portal, challenge)
    totp = pyotp.TOTP(citizen_secret)
    wrong = f"{(int(totp.now()) + 1) % 1_000_000:06d}"
    for _ in range(MAX_FAILURES):
        assert _sign_in(api, params, idcs=IDCS, code=wrong).status_code == 401
    # The right code during the lock still fails, and the page says why.
    locked = _sign_in(api, params, idcs=IDCS, code=totp.now())
    assert locked.status_code == 401 and "location" not in locked.headers
    assert "bloqué" in locked.text


def test_login_without_csrf_token_is_refused(api, portal, citizen_secret):  # type: ignore[no-untyped-def]
    _, challenge = _pkce()
    response = api.post(
        "/oauth/authorize",
        data={**_params(portal, challenge), "idcs": IDCS, "code": pyotp.TOTP(citizen_secret).now()},
        follow_redirects=False,
    )
    assert response.status_code == 401 and "location" not in response.headers


def test_totp_code_cannot_be_used_twice(oauth, citizen_secret):  # type: ignore[no-untyped-def]
    from identity.oauth import LoginFailed

    code = pyotp.TOTP(citizen_secret).now()
    assert oauth.citizens.authenticate({"idcs": IDCS, "code": code}).subject == IDCS
    with pytest.raises(LoginFailed) as refused:
        oauth.citizens.authenticate({"idcs": IDCS, "code": code})
    assert refused.value.reused and not refused.value.locked


def test_a_reused_code_tells_the_citizen_to_wait_for_the_next(api, portal, citizen_secret):  # type: ignore[no-untyped-def]
    _, challenge = _pkce()
    params = _params(portal, challenge)
    code = pyotp.TOTP(citizen_secret).now()
    assert _sign_in(api, params, idcs=IDCS, code=code).status_code in (302, 303)
    api.cookies.clear()  # another browser: no session to sign in with
    again = _sign_in(api, params, idcs=IDCS, code=code)
    assert again.status_code == 401
    assert "déjà servi" in again.text and "code suivant" in again.text
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    api.cookies.clear()
    other = _sign_in(api, params, idcs=IDCS, code=wrong)
    assert "déjà servi" not in other.text  # a wrong code is only "refused"


def test_totp_secret_is_stored_encrypted(oauth, citizen_secret):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from identity.oauth.tables import citizen_credentials

    with oauth.registry._engine.connect() as conn:
        stored = conn.execute(select(citizen_credentials.c.totp_secret)).scalar_one()
    assert citizen_secret.encode() not in stored


def test_auditor_signs_in_with_password_and_totp(api, oauth, settings):  # type: ignore[no-untyped-def]
    console = register(
        oauth,
        kind="auditor",
        sector="cndp",
        scopes="openid audit:read",
        purposes="",
        redirect_uris=(REDIRECT,),
    )
    secret = oauth.staff("auditor").add_user("auditrice", "correct horse battery")
    verifier, challenge = _pkce()
    params = _params(console, challenge, scope="openid audit:read", lang="ar")
    page = api.get("/oauth/authorize", params=params)
    assert 'dir="rtl"' in page.text
    wrong = api.post(
        "/oauth/authorize",
        data={
            **params,
            "csrf": _csrf(page.text),
            "username": "auditrice",
            "password": "wrong one!!",
            "code": pyotp.TOTP(secret).now(),
        },
        follow_redirects=False,
    )
    assert wrong.status_code == 401
    response = _sign_in(
        api,
        params,
        username="auditrice",
        password="correct horse battery",
        code=pyotp.TOTP(secret).now(),
    )
    assert response.status_code == 303, response.text
    code = parse_qs(urlsplit(response.headers["location"]).query)["code"][0]
    token = _redeem(api, console, code, verifier, settings).json()["access_token"]
    me = api.get("/test/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me == {
        "kind": "auditor",
        "subject": console.client_id,
        "actor": "auditrice",
        "client_id": console.client_id,
    }


def test_browser_session_signs_the_citizen_in_again_without_a_code(
    api, portal, citizen_secret, settings
):  # type: ignore[no-untyped-def]
    _, challenge = _pkce()
    first = _sign_in(
        api, _params(portal, challenge), idcs=IDCS, code=pyotp.TOTP(citizen_secret).now()
    )
    assert first.status_code == 303
    session = api.cookies.get("sijill_session")
    assert session and IDCS not in session  # sealed, not merely signed
    _, challenge = _pkce()
    again = api.get("/oauth/authorize", params=_params(portal, challenge), follow_redirects=False)
    assert again.status_code == 303 and "code=" in again.headers["location"]

    api.cookies.set("sijill_session", session[:-4] + "AAAA", path="/oauth/authorize")
    tampered = api.get(
        "/oauth/authorize", params=_params(portal, challenge), follow_redirects=False
    )
    assert tampered.status_code == 200  # back to the sign-in form
