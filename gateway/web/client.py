"""The portal and the console as OAuth clients of Sijill's own authorization server.

Each is a registered confidential client (kinds ``portal`` and ``auditor``) that signs in its
users with the authorization code flow and PKCE S256, authenticates to the token and
revocation endpoints with ``private_key_jwt`` (its private key in ``<data dir>/keys``, mode
0600), and calls those endpoints in process, exactly as an outside client would over HTTP.
The pending request (state, PKCE verifier, nonce, the page to return to) travels in a sealed
short-lived cookie, so a callback is honoured only in the browser that started it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey

from identity.oauth import HttpRequest, OAuthService
from identity.oauth.jose import sign_jwt
from identity.oauth.secrets import SecretBox

PENDING_COOKIE = "sijill_web_signin"
PENDING_TTL_S = 600


@dataclass(frozen=True)
class ClientSpec:
    """What one web client is: its kind, scopes and the path its sign-in comes back to."""

    name: str  # "portal" | "console" | "office"
    kind: str
    display_name: str
    sector: str
    scopes: str
    login: str  # the kind of person it signs in


PORTAL = ClientSpec(
    "portal", "portal", "Sijill — portail citoyen", "citizens", "openid citizen:self", "citizen"
)
CONSOLE = ClientSpec(
    "console", "auditor", "Sijill — console CNDP", "cndp", "openid audit:read", "auditor"
)
# The office's desks: officers sign in by name, so each decision names who took it.
OFFICE = ClientSpec(
    "office",
    "office",
    "Sijill — bureau d'enregistrement",
    "registry",
    "openid rsu:review rnp:rectify rnp:erase",
    "officer",
)


class SignInFailed(Exception):
    """The callback does not complete a sign-in this browser started."""


@dataclass(frozen=True)
class Tokens:
    access_token: str
    id_token: str | None
    subject: str
    sid: str | None
    expires_at: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class WebClient:
    """One registered web client: its key, its registration, its calls to the server."""

    def __init__(self, spec: ClientSpec, oauth: OAuthService, keys_dir: Path) -> None:
        self.spec = spec
        self.oauth = oauth
        issuer = oauth.issuer_url
        # The redirect URI is registered exactly (RFC 9700 §4.1.3): a client per issuer, so a
        # demo served again on another port registers anew instead of failing its callbacks.
        self.client_id = f"web-{spec.name}-{hashlib.sha256(issuer.encode()).hexdigest()[:8]}"
        self.redirect_uri = f"{issuer}/{spec.name}/callback"
        self._key_file = keys_dir / f"web-{spec.name}-client.json"
        self._box = SecretBox(keys_dir / "web-sessions.key")
        self._lock = threading.Lock()
        self._registered = False

    # -- registration ------------------------------------------------------------------------
    def _private_jwk(self) -> dict[str, Any]:
        if not self._key_file.exists():
            key = ec.generate_private_key(ec.SECP256R1())
            jwk = {
                **ECKey.import_key(key).as_dict(private=True),
                "kid": f"{self.spec.name}-{secrets.token_hex(4)}",
                "alg": "ES256",
            }
            self._key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                fd = os.open(self._key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another worker wrote it first
            else:
                with os.fdopen(fd, "w") as fh:
                    json.dump(jwk, fh)
        loaded: dict[str, Any] = json.loads(self._key_file.read_text())
        return loaded

    def ensure_registered(self) -> None:
        """Register the client (or its new key) with the authorization server, once."""
        if self._registered:
            return
        with self._lock:
            if self._registered:
                return
            private = self._private_jwk()
            public = {k: v for k, v in private.items() if k != "d"}
            registry = self.oauth.registry
            current = registry.get(self.client_id)
            if current is None:
                from identity.oauth import ClientRegistryError

                try:
                    registry.add(
                        name=self.spec.display_name,
                        kind=self.spec.kind,
                        sector=self.spec.sector,
                        jwks={"keys": [public]},
                        scopes=self.spec.scopes,
                        redirect_uris=(self.redirect_uri,),
                        client_id=self.client_id,
                    )
                except ClientRegistryError:
                    if registry.get(self.client_id) is None:  # not another worker's insert
                        raise
            elif [k.get("kid") for k in current.jwks.get("keys", [])] != [public["kid"]]:
                registry.replace_keys(self.client_id, {"keys": [public]})
            self._registered = True

    def _assertion(self, endpoint: str) -> list[tuple[str, str]]:
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        private = self._private_jwk()
        pem = ECKey.import_key(private).as_pem(private=True)
        key = load_pem_private_key(pem, password=None)
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": endpoint,
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "exp": now + 60,
        }
        assertion = sign_jwt(claims, key, kid=private["kid"], typ="JWT")
        return [
            ("client_id", self.client_id),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", assertion),
        ]

    # -- the authorization request ------------------------------------------------------------
    def start(self, next_path: str, lang: str) -> tuple[str, str]:
        """(the authorization URL to send the browser to, the sealed pending-request cookie)."""
        self.ensure_registered()
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)  # RFC 7636 §4.1: 43 to 128 characters
        challenge = _b64(hashlib.sha256(verifier.encode("ascii")).digest())
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.spec.scopes,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "ui_locales": lang,
        }
        pending = json.dumps(
            {
                "client": self.spec.name,
                "state": state,
                "nonce": nonce,
                "verifier": verifier,
                "next": next_path,
                "exp": int(time.time()) + PENDING_TTL_S,
            }
        )
        sealed = _b64(self._box.seal(pending, "web-signin"))
        return f"{self.oauth.endpoint('/oauth/authorize')}?{urlencode(params)}", sealed

    def finish(self, sealed: str | None, query: dict[str, str]) -> tuple[Tokens, str]:
        """Redeem the callback's code (state and issuer checked); (tokens, the page to show)."""
        if not sealed:
            raise SignInFailed("no sign-in was started in this browser")
        try:
            raw = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
            pending = json.loads(self._box.open(raw, "web-signin"))
        except Exception:
            raise SignInFailed("the sign-in cookie does not open") from None
        if pending.get("client") != self.spec.name or pending.get("exp", 0) < time.time():
            raise SignInFailed("the sign-in request has expired")
        if not secrets.compare_digest(str(pending["state"]), query.get("state", "")):
            raise SignInFailed("state mismatch")
        # RFC 9207: the response names its issuer; a mix-up attack would show another.
        if query.get("iss") not in (None, self.oauth.issuer_url):
            raise SignInFailed("the response comes from another issuer")
        if "code" not in query:
            raise SignInFailed(query.get("error", "no code"))
        endpoint = self.oauth.endpoint("/oauth/token")
        form = [
            ("grant_type", "authorization_code"),
            ("code", query["code"]),
            ("redirect_uri", self.redirect_uri),
            ("code_verifier", str(pending["verifier"])),
            *self._assertion(endpoint),
        ]
        response = self.oauth.server.create_token_response(HttpRequest("POST", endpoint, {}, form))
        body = response.body if isinstance(response.body, dict) else {}
        if response.status != 200 or "access_token" not in body:
            raise SignInFailed(
                f"{body.get('error', 'refused')}: {body.get('error_description', '')}"
            )
        access = self.oauth.verifier.verify(body["access_token"])
        id_token = body.get("id_token")
        sid = None
        if id_token:
            claims = self.oauth.verifier.id_token_hint(id_token)
            if claims.get("nonce") != pending["nonce"]:
                raise SignInFailed("nonce mismatch")
            sid = claims.get("sid")
        subject = str(access.subject)
        tokens = Tokens(
            access_token=body["access_token"],
            id_token=id_token,
            subject=subject,
            sid=sid if isinstance(sid, str) else None,
            expires_at=int(time.time()) + int(body.get("expires_in", 300)),
        )
        return tokens, str(pending.get("next") or f"/{self.spec.name}/")

    def sign_out(self, access_token: str, sid: str | None) -> bool:
        """Revoke the access token (RFC 7009) and the sign-in it came from; whether the
        revocation endpoint accepted the request."""
        endpoint = self.oauth.endpoint("/oauth/revoke")
        form = [("token", access_token), ("token_type_hint", "access_token")]
        # The server takes its issuer (or its token endpoint) as an assertion's audience.
        response = self.oauth.server.create_endpoint_response(
            "revocation",
            HttpRequest("POST", endpoint, {}, [*form, *self._assertion(self.oauth.issuer_url)]),
        )
        if sid:
            # As RP-initiated logout does: no token minted from this sign-in is honoured, and
            # the sign-in cookie of the authorization endpoint no longer signs anyone in.
            until = int(time.time()) + self.oauth.sessions.ttl_s + self.oauth.issuer.ttl_s
            self.oauth.revocations.revoke_session(sid, self.client_id, until)
        return bool(response.status == 200)
