"""OpenID Connect beyond sign-in: UserInfo (Core §5.3), RP-initiated logout, ui_locales."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

from tests.identity.oauth.conftest import IDCS, REDIRECT, Agent, assert_problem, token_request
from tests.identity.oauth.test_login import _params, _pkce, _redeem, _sign_in


def _signed_in_tokens(api: Any, portal: Agent, secret: str, settings: Any) -> dict[str, Any]:
    verifier, challenge = _pkce()
    response = _sign_in(api, _params(portal, challenge), idcs=IDCS, code=pyotp.TOTP(secret).now())
    assert response.status_code == 303, response.text
    code = parse_qs(urlsplit(response.headers["location"]).query)["code"][0]
    tokens = _redeem(api, portal, code, verifier, settings)
    assert tokens.status_code == 200, tokens.text
    body: dict[str, Any] = tokens.json()
    return body


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_discovery_names_userinfo_and_end_session_endpoints_that_answer(api, settings):  # type: ignore[no-untyped-def]
    oidc = api.get("/.well-known/openid-configuration").json()
    userinfo = oidc["userinfo_endpoint"].removeprefix(settings.issuer)
    logout = oidc["end_session_endpoint"].removeprefix(settings.issuer)
    assert (userinfo, logout) == ("/oauth/userinfo", "/oauth/logout")
    assert api.get(userinfo).status_code == 401
    assert api.get(logout).status_code == 400  # no id_token_hint, but it is there


def test_userinfo_gives_a_citizen_token_its_subject_and_nothing_else(
    api, portal, citizen_secret, settings
):  # type: ignore[no-untyped-def]
    tokens = _signed_in_tokens(api, portal, citizen_secret, settings)
    for method in ("GET", "POST"):
        response = api.request(method, "/oauth/userinfo", headers=_bearer(tokens["access_token"]))
        assert response.status_code == 200, response.text
        assert response.json() == {"sub": IDCS}
        assert response.headers["cache-control"] == "no-store"


def test_userinfo_refuses_a_missing_token_and_an_agency_token(api, agency):  # type: ignore[no-untyped-def]
    missing = assert_problem(api.get("/oauth/userinfo"), 401)
    assert "token" in missing["detail"]
    agency_token = token_request(api, agency).json()["access_token"]
    assert_problem(api.get("/oauth/userinfo", headers=_bearer(agency_token)), 403)


def test_logout_with_id_token_hint_revokes_the_sessions_tokens_and_returns_to_the_client(
    api, portal, citizen_secret, settings
):  # type: ignore[no-untyped-def]
    tokens = _signed_in_tokens(api, portal, citizen_secret, settings)
    assert api.get("/oauth/userinfo", headers=_bearer(tokens["access_token"])).status_code == 200

    response = api.get(
        "/oauth/logout",
        params={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": REDIRECT,
            "state": "bye-1",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"{REDIRECT}?state=bye-1"

    refused = assert_problem(
        api.get("/oauth/userinfo", headers=_bearer(tokens["access_token"])), 401
    )
    assert "sign-in" in refused["detail"]
    # The browser session is over too: the next authorization request asks to sign in.
    _, challenge = _pkce()
    again = api.get("/oauth/authorize", params=_params(portal, challenge), follow_redirects=False)
    assert again.status_code == 200 and 'name="idcs"' in again.text


@pytest.mark.parametrize(
    "params",
    [
        {"post_logout_redirect_uri": "https://attacker.example/"},
        {"post_logout_redirect_uri": REDIRECT, "client_id": "someone-else"},
    ],
)
def test_logout_to_an_unregistered_target_is_refused_and_ends_nothing(
    api, portal, citizen_secret, settings, params
):  # type: ignore[no-untyped-def]
    tokens = _signed_in_tokens(api, portal, citizen_secret, settings)
    response = api.get(
        "/oauth/logout",
        params={"id_token_hint": tokens["id_token"], **params},
        follow_redirects=False,
    )
    assert response.status_code == 400 and "location" not in response.headers
    assert api.get("/oauth/userinfo", headers=_bearer(tokens["access_token"])).status_code == 200


def test_logout_refuses_an_access_token_or_a_forged_token_as_the_hint(
    api, portal, citizen_secret, settings
):  # type: ignore[no-untyped-def]
    tokens = _signed_in_tokens(api, portal, citizen_secret, settings)
    for hint in (tokens["access_token"], tokens["id_token"][:-6] + "AAAAAA"):
        response = api.post("/oauth/logout", data={"id_token_hint": hint})
        assert response.status_code == 400
    assert api.get("/oauth/userinfo", headers=_bearer(tokens["access_token"])).status_code == 200


def test_logout_without_a_redirect_shows_a_signed_out_page_in_the_ui_locale(
    api, portal, citizen_secret, settings
):  # type: ignore[no-untyped-def]
    tokens = _signed_in_tokens(api, portal, citizen_secret, settings)
    response = api.get(
        "/oauth/logout", params={"id_token_hint": tokens["id_token"], "ui_locales": "en"}
    )
    assert response.status_code == 200
    assert "You are signed out" in response.text


@pytest.mark.parametrize(
    ("extra", "lang"),
    [
        ({"ui_locales": "de ar"}, "ar"),
        ({"ui_locales": "en-GB fr"}, "en"),
        ({"ui_locales": "de"}, "fr"),
        ({"ui_locales": "ar", "lang": "en"}, "en"),  # the person's own pick wins
    ],
)
def test_sign_in_page_speaks_the_first_ui_locale_it_supports(api, portal, extra, lang):  # type: ignore[no-untyped-def]
    _, challenge = _pkce()
    page = api.get("/oauth/authorize", params=_params(portal, challenge, **extra))
    assert page.status_code == 200
    assert f'<html lang="{lang}"' in page.text
    assert ('dir="rtl"' in page.text) == (lang == "ar")
