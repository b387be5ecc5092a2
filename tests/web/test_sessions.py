"""The web clients' server side: sessions hold the tokens sealed and answer only their own
client's cookie; sign-out revokes the access token at the authorization server."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import select

from gateway.db import make_engine
from gateway.web.client import CONSOLE, PORTAL, WebClient
from gateway.web.sessions import WebSessions
from gateway.web.tables import web_sessions
from identity.oauth import InvalidToken, build_oauth_service
from identity.oauth.secrets import SecretBox


@pytest.fixture
def oauth(settings: Any) -> Any:
    engine = make_engine(settings.database_url, pool_size=2)
    yield build_oauth_service(engine, settings.data_dir / "keys", settings.issuer)
    engine.dispose()


def test_a_session_keeps_its_tokens_sealed_and_answers_its_own_client_only(
    settings: Any, oauth: Any
) -> None:
    sessions = WebSessions(oauth.registry._engine, SecretBox(settings.data_dir / "k.key"))
    cookie = sessions.create(
        "portal", "2345678901", access_token="eyJ.secret.token", id_token=None, sid="s1",
        expires_at=int(time.time()) + 60,
    )  # fmt: skip
    found = sessions.get("portal", cookie)
    assert found is not None and found.access_token == "eyJ.secret.token"
    assert sessions.get("console", cookie) is None
    assert sessions.get("portal", cookie + "x") is None
    with oauth.registry._engine.connect() as conn:
        row = conn.execute(select(web_sessions)).mappings().one()
    assert b"secret" not in row["tokens"] and cookie not in str(dict(row))
    sessions.end(cookie)
    assert sessions.get("portal", cookie) is None


def test_an_expired_session_is_gone(settings: Any, oauth: Any) -> None:
    sessions = WebSessions(oauth.registry._engine, SecretBox(settings.data_dir / "k.key"))
    cookie = sessions.create(
        "portal", "2345678901", access_token="t", id_token=None, sid=None,
        expires_at=int(time.time()) - 1,
    )  # fmt: skip
    assert sessions.get("portal", cookie) is None


@pytest.mark.parametrize("spec", [PORTAL, CONSOLE], ids=["portal", "console"])
def test_sign_out_revokes_the_access_token(settings: Any, oauth: Any, spec: Any) -> None:
    client = WebClient(spec, oauth, settings.data_dir / "keys")
    client.ensure_registered()
    registered = oauth.registry.get(client.client_id)
    assert registered.kind == spec.kind
    assert registered.redirect_uris == (f"{settings.issuer}/{spec.name}/callback",)
    token, _ = oauth.issuer.access_token(
        client_id=client.client_id, scope=spec.scopes, subject="2345678901",
        subject_kind=spec.login, jkt=None, auth_time=int(time.time()), session_id="sid-1",
    )  # fmt: skip
    oauth.verifier.verify(token)
    assert client.sign_out(token, "sid-1")
    with pytest.raises(InvalidToken):
        oauth.verifier.verify(token)
    assert oauth.revocations.is_session_revoked("sid-1")
