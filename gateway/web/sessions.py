"""Server-side browser sessions: the cookie is an opaque random value, the tokens stay here.

A session lives as long as its access token (the authorization server issues no refresh
token); an expired one sends the person through the authorization endpoint again, which signs
them back in at once while its own sign-in cookie lasts. Each session has its own CSRF token,
which every form of its pages carries and every POST must return.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, select

from gateway.web.tables import web_sessions
from identity.oauth.secrets import SecretBox

SESSION_COOKIE = {"portal": "sijill_portal", "console": "sijill_console", "office": "sijill_office"}


@dataclass(frozen=True)
class WebSession:
    client: str
    subject: str
    access_token: str
    id_token: str | None
    sid: str | None
    csrf: str
    expires_at: int

    def csrf_ok(self, submitted: str | None) -> bool:
        return bool(submitted) and hmac.compare_digest(self.csrf, submitted or "")


def _hash(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


class WebSessions:
    def __init__(self, engine: Engine, box: SecretBox) -> None:
        self._engine = engine
        self._box = box

    def create(
        self,
        client: str,
        subject: str,
        *,
        access_token: str,
        id_token: str | None,
        sid: str | None,
        expires_at: int,
    ) -> str:
        """A new session; returns the cookie value (never stored)."""
        cookie = secrets.token_urlsafe(32)
        id_hash = _hash(cookie)
        tokens = json.dumps({"access_token": access_token, "id_token": id_token, "sid": sid})
        now = int(time.time())
        with self._engine.begin() as conn:
            # Expired sessions go as new ones come: the table holds live sessions only.
            conn.execute(delete(web_sessions).where(web_sessions.c.expires_at < now))
            conn.execute(
                insert(web_sessions).values(
                    id_hash=id_hash,
                    client=client,
                    subject=subject,
                    tokens=self._box.seal(tokens, f"web-session:{id_hash}"),
                    csrf=secrets.token_urlsafe(32),
                    created_at=now,
                    expires_at=expires_at,
                )
            )
        return cookie

    def get(self, client: str, cookie: str | None) -> WebSession | None:
        """The live session of ``client`` this cookie names, or None."""
        if not cookie or len(cookie) > 128:
            return None
        id_hash = _hash(cookie)
        with self._engine.connect() as conn:
            row = (
                conn.execute(select(web_sessions).where(web_sessions.c.id_hash == id_hash))
                .mappings()
                .first()
            )
        if row is None or row["client"] != client or row["expires_at"] <= time.time():
            return None
        tokens = json.loads(self._box.open(row["tokens"], f"web-session:{id_hash}"))
        return WebSession(
            client=client,
            subject=row["subject"],
            access_token=tokens["access_token"],
            id_token=tokens.get("id_token"),
            sid=tokens.get("sid"),
            csrf=row["csrf"],
            expires_at=int(row["expires_at"]),
        )

    def end(self, cookie: str | None) -> None:
        if cookie:
            with self._engine.begin() as conn:
                conn.execute(delete(web_sessions).where(web_sessions.c.id_hash == _hash(cookie)))
