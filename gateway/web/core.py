"""What every page shares: the templates per language, the security headers, the session and
CSRF checks, and the bridge to the JSON API (called in process with the session's token)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from gateway.services import Services
from gateway.web.client import CONSOLE, OFFICE, PENDING_COOKIE, PORTAL, SignInFailed, WebClient
from gateway.web.i18n import (
    LANG_COOKIE,
    LANGUAGES,
    NATIVE_NAMES,
    Formats,
    direction,
    negotiate,
    translations,
)
from gateway.web.sessions import SESSION_COOKIE, WebSession, WebSessions
from identity.oauth.secrets import SecretBox

log = logging.getLogger("sijill.web")
TEMPLATES = Path(__file__).with_name("templates")
# Strict: scripts and styles from this origin only, nothing inline, no framing, no plugins,
# forms only to this origin; the in-browser verification fetches from this origin only.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # The callback's URL holds the code and state: never leak it to another site.
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
NO_STORE: Mapping[str, str] = {"Cache-Control": "no-store"}


def _environment(lang: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "svg"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    catalogue = translations(lang)
    env.install_gettext_translations(catalogue, newstyle=True)  # type: ignore[attr-defined]

    def term(kind: str, key: str | None, default: str | None = None) -> str:
        """A register's word (a purpose, a field, an action) in the page's language; one the
        catalogue does not know yet is shown as it is, marked as data, never as an id."""
        msgid = f"{kind}.{key}"
        found = catalogue.gettext(msgid)
        if found != msgid:
            return found
        shown = default if default is not None else key or ""
        return Markup('<bdi translate="no" class="data">{}</bdi>').format(shown)

    env.globals["term"] = term
    return env


class ApiError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"API answered {status}")
        self.status = status
        self.body = body


@dataclass
class WebRoom:
    """The room's shared state, built once per app."""

    api_app: ASGIApp
    issuer: str
    secure_cookies: bool
    sessions: WebSessions
    clients: dict[str, WebClient]
    envs: dict[str, Environment] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for lang in LANGUAGES:
            self.envs[lang] = _environment(lang)

    # -- language ----------------------------------------------------------------------------
    def lang(self, request: Request) -> str:
        return negotiate(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))

    def gettext(self, lang: str) -> Callable[[str], str]:
        return translations(lang).gettext

    # -- pages -------------------------------------------------------------------------------
    def render(
        self,
        request: Request,
        template: str,
        context: Mapping[str, Any] | None = None,
        *,
        session: WebSession | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        lang = self.lang(request)
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        page = (
            self.envs[lang]
            .get_template(template)
            .render(
                lang=lang,
                dir=direction(lang),
                languages=[(code, NATIVE_NAMES[code]) for code in LANGUAGES],
                here=quote(here, safe="/"),
                path=request.url.path,
                session=session,
                csrf=session.csrf if session else "",
                fmt=Formats(lang),
                **(context or {}),
            )
        )
        response = HTMLResponse(page, status_code=status)
        self.secure(response)
        return response

    def secure(self, response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        response.headers.update(NO_STORE)
        if self.secure_cookies:
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        return response

    def redirect(self, location: str) -> Response:
        return self.secure(RedirectResponse(location, status_code=303))

    def set_cookie(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            httponly=True,
            secure=self.secure_cookies,
            samesite="lax",
            path="/",
        )

    # -- sessions ----------------------------------------------------------------------------
    def session(self, request: Request, client: str) -> WebSession | None:
        return self.sessions.get(client, request.cookies.get(SESSION_COOKIE[client]))

    def sign_in(self, request: Request, client: str, target: str | None = None) -> Response:
        """Off to the authorization endpoint, back to ``target`` (default: this page)
        afterwards."""
        if target is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        url, pending = self.clients[client].start(
            local_path(target, f"/{client}/"), self.lang(request)
        )
        response = self.redirect(url)
        self.set_cookie(response, PENDING_COOKIE, pending, 600)
        return response

    def pick_language(self, request: Request, home: str) -> Response:
        """Remember the language picked (a cookie for a year) and go back to the page."""
        lang = request.query_params.get("to", "")
        response = self.redirect(local_path(request.query_params.get("next"), home))
        if lang in LANGUAGES:
            self.set_cookie(response, LANG_COOKIE, lang, 365 * 86400)
        return response

    async def checked_post(
        self, request: Request, client: str
    ) -> tuple[WebSession, dict[str, str]] | Response:
        """A form post of a signed-in person carrying the session's CSRF token, else a
        refusal page."""
        form = await form_values(request)
        session = self.session(request, client)
        if session is None:
            return self.error(request, client, "error.signed_out", 401)
        if not session.csrf_ok(form.get("csrf")):
            return self.error(request, client, "error.csrf", 403)
        return session, form

    def error(self, request: Request, client: str, message: str, status: int) -> Response:
        return self.render(
            request, "error.html", {"message": message, "room": client}, status=status
        )

    def api_failed(self, request: Request, client: str, exc: ApiError) -> Response:
        """An API refusal as a page: an expired token signs in again and comes back here."""
        if exc.status == 401:
            return self.sign_in(request, client)
        message = {403: "error.forbidden", 404: "error.not_found"}.get(exc.status, "error.api")
        return self.error(request, client, message, exc.status)

    def callback(self, request: Request, client: str) -> Response:
        web_client = self.clients[client]
        try:
            tokens, next_path = web_client.finish(
                request.cookies.get(PENDING_COOKIE), dict(request.query_params)
            )
        except SignInFailed as exc:
            log.info("web sign-in refused: %s", exc)
            return self.render(request, "error.html", {"message": "error.signin"}, status=400)
        cookie = self.sessions.create(
            client,
            tokens.subject,
            access_token=tokens.access_token,
            id_token=tokens.id_token,
            sid=tokens.sid,
            expires_at=tokens.expires_at,
        )
        response = self.redirect(local_path(next_path, f"/{client}/"))
        response.delete_cookie(PENDING_COOKIE, path="/")
        self.set_cookie(
            response, SESSION_COOKIE[client], cookie, max(1, tokens.expires_at - int(time.time()))
        )
        return response

    def sign_out(self, request: Request, client: str, session: WebSession) -> Response:
        if not self.clients[client].sign_out(session.access_token, session.sid):
            log.warning("the %s's access token was not revoked at sign-out", client)
        self.sessions.end(request.cookies.get(SESSION_COOKIE[client]))
        response = self.redirect(f"/{client}/?signed_out=1")
        response.delete_cookie(SESSION_COOKIE[client], path="/")
        # The authorization endpoint's own sign-in cookie: it would sign the person back in.
        response.delete_cookie("sijill_session", path="/oauth/authorize")
        return response

    # -- the JSON API, with the session's own token -------------------------------------------
    async def api(
        self,
        session: WebSession,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        transport = httpx.ASGITransport(app=self.api_app)
        async with httpx.AsyncClient(transport=transport, base_url=self.issuer) as client:
            response = await client.request(
                method,
                path,
                params={k: v for k, v in (params or {}).items() if v not in (None, "")},
                json=json,
                headers={"Authorization": f"Bearer {session.access_token}"},
            )
        body: Any = None
        if response.content:
            try:
                body = response.json()
            except ValueError:
                body = response.text
        if response.status_code >= 400:
            raise ApiError(response.status_code, body)
        return body

    async def public(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        transport = httpx.ASGITransport(app=self.api_app)
        async with httpx.AsyncClient(transport=transport, base_url=self.issuer) as client:
            response = await client.get(path, params=params)
        if response.status_code >= 400:
            raise ApiError(response.status_code, response.text)
        return response.text


def build_room(api_app: ASGIApp, services: Services) -> WebRoom:
    """The web room shared by the portal and the console: OAuth clients of the authorization
    server beside them, with their server-side sessions."""
    oauth = services.oauth
    keys = services.settings.data_dir / "keys"
    return WebRoom(
        api_app=api_app,
        issuer=oauth.issuer_url,
        # Secure everywhere but the plain-http loopback demo, where browsers would drop a
        # Secure cookie.
        secure_cookies=not oauth.issuer_url.startswith(("http://127.0.0.1", "http://localhost")),
        sessions=WebSessions(services.engines["main"], SecretBox(keys / "web-sessions.key")),
        clients={
            "portal": WebClient(PORTAL, oauth, keys),
            "console": WebClient(CONSOLE, oauth, keys),
            "office": WebClient(OFFICE, oauth, keys),
        },
    )


def room_of(request: Request) -> WebRoom:
    """The web room of the sub-application serving ``request`` (set by ``mount_web``)."""
    room = request.app.state.web_room
    assert isinstance(room, WebRoom)
    return room


def signed_in(request: Request, client: str) -> tuple[WebRoom, WebSession | None]:
    """The web room serving ``request`` and its session with ``client`` (None: signed out)."""
    room = room_of(request)
    return room, room.session(request, client)


async def form_values(request: Request) -> dict[str, str]:
    """A posted form's text fields (files are never accepted)."""
    form = await request.form()
    return {k: v for k, v in form.multi_items() if isinstance(v, str)}


def local_path(target: str | None, default: str) -> str:
    """``target`` if it is a path on this site (never another origin: an open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def session_routes(client: str, prefix: str, after_sign_in: str) -> list[BaseRoute]:
    """The pages every room's sign-in needs, for the web client ``client`` mounted at
    ``prefix``: sign in (then to a local ``next``, else ``after_sign_in``), the authorization
    server's callback, sign out (a CSRF-checked post) and the language pick."""

    async def sign_in(request: Request) -> Response:
        target = local_path(request.query_params.get("next"), after_sign_in)
        return room_of(request).sign_in(request, client, target)

    async def callback(request: Request) -> Response:
        return room_of(request).callback(request, client)

    async def sign_out(request: Request) -> Response:
        room = room_of(request)
        checked = await room.checked_post(request, client)
        if isinstance(checked, Response):
            return checked
        return room.sign_out(request, client, checked[0])

    async def language(request: Request) -> Response:
        return room_of(request).pick_language(request, f"{prefix}/")

    return [
        Route("/signin", sign_in),
        Route("/callback", callback),
        Route("/signout", sign_out, methods=["POST"]),
        Route("/language", language),
    ]
