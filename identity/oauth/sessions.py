"""The browser session of the sign-in page: who signed in, sealed in an opaque cookie.

The cookie is AES-256-GCM under the same key file as the TOTP secrets, so a citizen's IDCS
never sits readable in a browser profile or a proxy log, and a forged or altered cookie fails
to open. It holds the subject, its kind, the sign-in time and the methods used; it expires
after ``ttl_s`` (OpenID Connect ``max_age`` semantics are left for later).
"""

from __future__ import annotations

import base64
import json
import time

from cryptography.exceptions import InvalidTag

from identity.oauth.secrets import SecretBox
from identity.oauth.server import SignedInUser

_CONTEXT = "browser-session"


class SessionCookies:
    def __init__(self, box: SecretBox, *, ttl_s: int = 900) -> None:
        self._box = box
        self.ttl_s = ttl_s

    def seal(self, user: SignedInUser) -> str:
        body = {
            "sub": user.subject,
            "kind": user.kind,
            "auth_time": user.auth_time,
            "amr": list(user.amr),
            "exp": int(time.time()) + self.ttl_s,
        }
        sealed = self._box.seal(json.dumps(body, separators=(",", ":")), _CONTEXT)
        return base64.urlsafe_b64encode(sealed).decode("ascii")

    def open(self, cookie: str | None) -> SignedInUser | None:
        if not cookie or len(cookie) > 2048:
            return None
        try:
            body = json.loads(self._box.open(base64.urlsafe_b64decode(cookie), _CONTEXT))
        except (InvalidTag, ValueError, UnicodeDecodeError):
            return None
        if not isinstance(body, dict) or int(body.get("exp", 0)) < time.time():
            return None
        return SignedInUser(
            str(body["sub"]), str(body["kind"]), int(body["auth_time"]), tuple(body.get("amr", ()))
        )
