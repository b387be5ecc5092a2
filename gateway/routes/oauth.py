"""OAuth 2.0 / OpenID Connect endpoints: the Starlette side of :mod:`identity.oauth`.

This module is the request/response adapter Authlib leaves to each framework: it turns a
Starlette request into :class:`identity.oauth.HttpRequest` (with the *public* URL built from
the issuer, so audiences and DPoP ``htu`` do not depend on what a proxy forwarded), runs the
blocking server code in the thread pool, and answers errors as problem+json that also carry
RFC 6749 §5.2's ``error`` and ``error_description`` members, which OAuth client libraries read.
"""

from __future__ import annotations

import hmac
import html
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from authlib.common.urls import add_params_to_uri
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from gateway.auth import forwarded_certificate, refusal_reporter, source_of
from gateway.middleware import route_template
from gateway.problems import MEDIA_TYPE, TYPE_BASE, responses
from gateway.security import claimed_client
from gateway.services import services_of
from identity.oauth import (
    CERTIFICATE_REQUIRED,
    Authenticator,
    DpopError,
    HttpRequest,
    HttpResponse,
    InvalidToken,
    LoginFailed,
    OAuthService,
    SignedInUser,
)

router = APIRouter(tags=["oauth"], responses=responses(503))
# The token, introspection and revocation endpoints: OAuth errors as problem documents.
_FORM_ERRORS = responses(400, 401, 408, 413)
# The sign-in page answers its own errors as pages (the browser shows them).
_GRANT_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["grant_type"],
                    "properties": {
                        "grant_type": {
                            "type": "string",
                            "enum": ["client_credentials", "authorization_code"],
                        },
                        "client_assertion_type": {"type": "string"},
                        "client_assertion": {"type": "string"},
                        "client_id": {"type": "string"},
                        "scope": {"type": "string"},
                        "code": {"type": "string"},
                        "redirect_uri": {"type": "string"},
                        "code_verifier": {"type": "string"},
                    },
                }
            }
        },
    }
}
_TOKEN_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["token"],
                    "properties": {
                        "token": {"type": "string"},
                        "token_type_hint": {"type": "string"},
                        "client_assertion_type": {"type": "string"},
                        "client_assertion": {"type": "string"},
                        "client_id": {"type": "string"},
                    },
                }
            }
        },
    }
}
_PAGE_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}
    for status, description in ((400, "Invalid authorization request"), (401, "Sign-in refused"))
}
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
SESSION_COOKIE = "sijill_session"
CSRF_COOKIE = "sijill_login_csrf"
# The OAuth parameters an authorization request may carry (everything else is dropped).
_AUTHZ_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "ui_locales",
)
# Which sign-in a client's users go through.
_LOGIN_FOR_CLIENT = {"portal": "citizen", "office": "officer", "auditor": "auditor"}


def _public_url(oauth: OAuthService, request: Request) -> str:
    query = request.url.query
    return oauth.issuer_url + request.url.path + (f"?{query}" if query else "")


def oauth_problem(
    status: int, error: str, description: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {
        "type": TYPE_BASE + "oauth-" + error.replace("_", "-"),
        "title": error.replace("_", " ").capitalize(),
        "status": status,
        "detail": description,
        "error": error,
        "error_description": description,
    }
    return JSONResponse(
        body, status_code=status, media_type=MEDIA_TYPE, headers={**NO_STORE, **(headers or {})}
    )


def _respond(response: HttpResponse) -> Response:
    headers = dict(response.headers)
    headers.pop("Content-Type", None)
    if response.status >= 400 and isinstance(response.body, dict) and "error" in response.body:
        error = str(response.body["error"])
        description = str(response.body.get("error_description") or error.replace("_", " "))
        status = 401 if error == "invalid_client" else response.status
        extra = (
            {"WWW-Authenticate": 'Bearer realm="sijill", error="invalid_client"'}
            if status == 401
            else {}
        )
        return oauth_problem(status, error, description, extra)
    return JSONResponse(response.body, status_code=response.status, headers={**headers, **NO_STORE})


async def _form(request: Request) -> list[tuple[str, str]]:
    form = await request.form()
    return [(k, v) for k, v in form.multi_items() if isinstance(v, str)]


@router.get("/oauth/jwks", summary="The authorization server's public signing keys (RFC 7517)")
def jwks(request: Request) -> JSONResponse:
    return JSONResponse(
        services_of(request).oauth.keys.jwks(), headers={"Cache-Control": "public, max-age=60"}
    )


@router.get(
    "/.well-known/oauth-authorization-server", summary="Authorization server metadata (RFC 8414)"
)
def oauth_metadata(request: Request) -> dict[str, Any]:
    return services_of(request).oauth.metadata()


@router.get("/.well-known/openid-configuration", summary="OpenID Connect Discovery 1.0")
def openid_configuration(request: Request) -> dict[str, Any]:
    return services_of(request).oauth.openid_configuration()


@router.post(
    "/oauth/token",
    summary="Token endpoint (RFC 6749 §3.2; private_key_jwt or mTLS; DPoP or certificate-bound)",
    responses=_FORM_ERRORS,
    openapi_extra=_GRANT_FORM,
)
async def token(request: Request) -> Response:
    oauth = services_of(request).oauth
    url = oauth.endpoint("/oauth/token")
    proofs = request.headers.getlist("dpop")
    jkt = None
    form = await _form(request)
    report = refusal_reporter(request)
    # The client the assertion (else client_id) claims to be: unchecked, to name it on record.
    fields = dict(form)
    claimed = claimed_client(fields.get("client_assertion", "")) or fields.get("client_id")
    certificate = await run_in_threadpool(forwarded_certificate, request, report)
    if len(proofs) > 1:
        await run_in_threadpool(report, "dpop_refused", "proof_count", claimed)
        return oauth_problem(400, "invalid_dpop_proof", "Send at most one DPoP proof.")
    if proofs:
        try:
            # RFC 9449 §5: the proof binds the token to the client's key (no ath here).
            proof = await run_in_threadpool(oauth.dpop.verify, proofs[0], method="POST", url=url)
        except DpopError as exc:
            await run_in_threadpool(report, "dpop_refused", exc.reason, claimed)
            return oauth_problem(400, "invalid_dpop_proof", f"{str(exc).capitalize()}.")
        jkt = proof.jkt
    http = HttpRequest("POST", url, dict(request.headers), form, jkt, certificate)
    response = await run_in_threadpool(oauth.server.create_token_response, http)
    body = response.body if isinstance(response.body, dict) else {}
    error = body.get("error")
    described = str(body.get("error_description", ""))
    if error == "invalid_client" and "client_assertion" not in fields and certificate:
        # RFC 8705 §2.2: a certificate this client did not register.
        await run_in_threadpool(report, "certificate_refused", "not_registered", claimed)
    elif error == "invalid_client":
        # RFC 7523 §3: a refused assertion (forged, expired, replayed, another audience).
        reason = "replayed" if "used before" in described else "invalid"
        await run_in_threadpool(report, "client_assertion_refused", reason, claimed)
    elif error == "invalid_dpop_proof":
        await run_in_threadpool(report, "dpop_refused", "proof_required", claimed)
    elif error == "invalid_request" and described == CERTIFICATE_REQUIRED:
        await run_in_threadpool(report, "certificate_refused", "certificate_required", claimed)
    return _respond(response)


@router.post(
    "/oauth/introspect",
    summary="Token introspection (RFC 7662)",
    responses=_FORM_ERRORS,
    openapi_extra=_TOKEN_FORM,
)
async def introspect(request: Request) -> Response:
    return await _endpoint_response(request, "introspection", "/oauth/introspect")


@router.post(
    "/oauth/revoke",
    summary="Token revocation (RFC 7009)",
    responses=_FORM_ERRORS,
    openapi_extra=_TOKEN_FORM,
)
async def revoke(request: Request) -> Response:
    return await _endpoint_response(request, "revocation", "/oauth/revoke")


async def _endpoint_response(request: Request, name: str, path: str) -> Response:
    """Introspection or revocation: Authlib's endpoint, the client authenticated by its
    assertion or by the certificate the proxy forwarded."""
    oauth = services_of(request).oauth
    report = refusal_reporter(request)
    certificate = await run_in_threadpool(forwarded_certificate, request, report)
    form = await _form(request)
    http = HttpRequest("POST", oauth.endpoint(path), dict(request.headers), form, None, certificate)
    return _respond(await run_in_threadpool(oauth.server.create_endpoint_response, name, http))


# -- the authorization endpoint and its sign-in page --------------------------------------

_TEXT = {
    "fr": {
        "title": "Connexion à Sijill",
        "citizen": "Identifiant citoyen (IDCS, 10 chiffres)",
        "username": "Nom d'utilisateur",
        "password": "Mot de passe",
        "code": "Code à usage unique (application d'authentification)",
        "submit": "Se connecter",
        "failed": "Connexion refusée. Vérifiez vos informations.",
        "locked": "Trop d'essais : compte bloqué pour un moment. Réessayez plus tard.",
        "reused": "Ce code a déjà servi. Attendez le code suivant de votre application.",
        "invalid": "Cette demande de connexion n'est pas valide.",
        "for": "Demandé par",
        "language": "Langue",
        "signed_out": "Vous êtes déconnecté de Sijill.",
        "logout_invalid": "Cette demande de déconnexion n'est pas valide.",
        "logout_needs_hint": "La déconnexion demande l'id_token_hint de l'application.",
    },
    "ar": {
        "title": "تسجيل الدخول إلى سجل",
        "citizen": "المعرف المدني (IDCS، 10 أرقام)",
        "username": "اسم المستخدم",
        "password": "كلمة المرور",
        "code": "الرمز المؤقت (تطبيق المصادقة)",
        "submit": "دخول",
        "failed": "تعذر تسجيل الدخول. تحقق من معلوماتك.",
        "locked": "محاولات كثيرة: الحساب مقفل مؤقتا. حاول لاحقا.",
        "reused": "سبق استعمال هذا الرمز. انتظر الرمز التالي في تطبيقك.",
        "invalid": "طلب تسجيل الدخول هذا غير صالح.",
        "for": "مطلوب من طرف",
        "language": "اللغة",
        "signed_out": "تم تسجيل خروجك من سجل.",
        "logout_invalid": "طلب تسجيل الخروج هذا غير صالح.",
        "logout_needs_hint": "يتطلب تسجيل الخروج id_token_hint من التطبيق.",
    },
    "en": {
        "title": "Sign in to Sijill",
        "citizen": "Citizen identifier (IDCS, 10 digits)",
        "username": "Username",
        "password": "Password",
        "code": "One-time code (authenticator app)",
        "submit": "Sign in",
        "failed": "Sign-in refused. Check your details.",
        "locked": "Too many attempts: the account is locked for a while. Try again later.",
        "reused": "This code was already used. Wait for the next code from your app.",
        "invalid": "This sign-in request is not valid.",
        "for": "Requested by",
        "language": "Language",
        "signed_out": "You are signed out of Sijill.",
        "logout_invalid": "This sign-out request is not valid.",
        "logout_needs_hint": "Sign-out needs the application's id_token_hint.",
    },
}


_CSS = (
    "body{font:1.1rem/1.5 system-ui,sans-serif;max-width:28rem;margin:2rem auto;"
    "padding:0 1rem}label{display:block;margin-top:1rem;font-weight:600}"
    "input{width:100%;font-size:1.1rem;padding:.5rem;box-sizing:border-box}"
    "button{margin-top:1.5rem;font-size:1.1rem;padding:.6rem 1.2rem}"
    "[role=alert]{border:2px solid #b00020;padding:.5rem;color:#b00020}"
    "nav a{margin-inline-end:1rem}"
)


def _lang(request: Request, form: dict[str, str] | None = None) -> str:
    """The page's language: the one the person picked (``lang``), else the first of the
    client's ``ui_locales`` we speak (OIDC Core §3.1.2.1), else French."""
    form = form or {}
    picked = form.get("lang") or request.query_params.get("lang")
    if picked in _TEXT:
        return str(picked)
    wanted = form.get("ui_locales") or request.query_params.get("ui_locales") or ""
    for tag in wanted.split():
        base = tag.split("-")[0].lower()
        if base in _TEXT:
            return base
    return "fr"


def _page(lang: str, body: str, status: int = 200) -> HTMLResponse:
    t = _TEXT[lang]
    direction = "rtl" if lang == "ar" else "ltr"
    doc = f"""<!doctype html>
<html lang="{lang}" dir="{direction}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{t["title"]}</title>
<style>{_CSS}</style></head><body><main>{body}</main></body></html>"""
    # The page must never be framed (clickjacking of the sign-in) nor cached.
    return HTMLResponse(
        doc,
        status_code=status,
        headers={
            **NO_STORE,
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
            "form-action 'self'; frame-ancestors 'none'",
        },
    )


def _login_form(
    lang: str,
    login: str,
    client_name: str,
    params: dict[str, str],
    csrf: str,
    error: str | None = None,
) -> HTMLResponse:
    t = _TEXT[lang]
    esc = html.escape
    hidden = "".join(
        f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in params.items()
    )
    langs = " ".join(
        f'<a href="?{esc(urlencode({**params, "lang": code}))}" lang="{code}">{name}</a>'
        for code, name in (("fr", "Français"), ("ar", "العربية"), ("en", "English"))
    )
    if login == "citizen":
        fields = (
            f'<label for="idcs">{t["citizen"]}</label><input id="idcs" name="idcs" '
            'inputmode="numeric" pattern="[0-9]{10}" maxlength="10" required '
            'autocomplete="username">'
        )
    else:
        fields = (
            f'<label for="username">{t["username"]}</label><input id="username" '
            'name="username" required autocomplete="username">'
            f'<label for="password">{t["password"]}</label><input id="password" '
            'name="password" type="password" required autocomplete="current-password">'
        )
    alert = f'<p role="alert">{t[error]}</p>' if error else ""
    body = (
        f'<nav aria-label="{t["language"]}">{langs}</nav><h1>{t["title"]}</h1>'
        # The client's registered name is data, shown as registered.
        f'<p>{t["for"]}: <strong translate="no">{esc(client_name)}</strong></p>{alert}'
        f'<form method="post" action="/oauth/authorize">{hidden}'
        f'<input type="hidden" name="lang" value="{lang}">'
        f'<input type="hidden" name="csrf" value="{esc(csrf)}">{fields}'
        f'<label for="code">{t["code"]}</label><input id="code" name="code" '
        'inputmode="numeric" pattern="[0-9]{6}" maxlength="6" required '
        f'autocomplete="one-time-code"><button type="submit">{t["submit"]}</button></form>'
    )
    return _page(lang, body, 401 if error else 200)


def _secure_cookie(oauth: OAuthService) -> bool:
    # Secure everywhere except the plain-http loopback demo (browsers drop Secure cookies there).
    return not oauth.issuer_url.startswith(("http://127.0.0.1", "http://localhost"))


def _authorization_params(pairs: list[tuple[str, str]]) -> dict[str, str]:
    return {k: v for k, v in pairs if k in _AUTHZ_PARAMS}


def _check_request(oauth: OAuthService, params: dict[str, str]) -> tuple[str, str] | None:
    """(login kind, client name) if the authorization request is valid, else None."""
    from authlib.oauth2 import OAuth2Error

    client = oauth.server.query_client(params.get("client_id", ""))
    if client is None or client.kind not in _LOGIN_FOR_CLIENT:
        return None
    http = HttpRequest("POST", oauth.endpoint("/oauth/authorize"), {}, list(params.items()))
    try:
        oauth.server.get_consent_grant(request=oauth.server.create_oauth2_request(http))
    except OAuth2Error:
        return None
    return _LOGIN_FOR_CLIENT[client.kind], client.name


def _redirect(oauth: OAuthService, params: dict[str, str], user: SignedInUser) -> Response:
    http = HttpRequest("POST", oauth.endpoint("/oauth/authorize"), {}, list(params.items()))
    response = oauth.server.authorize(http, user)
    if response.location is None:
        return _page("fr", "<p>error</p>", 400)
    redirect = RedirectResponse(response.location, status_code=303, headers=NO_STORE)
    redirect.set_cookie(
        SESSION_COOKIE,
        oauth.sessions.seal(user),
        max_age=oauth.sessions.ttl_s,
        httponly=True,
        secure=_secure_cookie(oauth),
        samesite="lax",
        path="/oauth/authorize",
    )
    return redirect


def _with_csrf(oauth: OAuthService, response: HTMLResponse, csrf: str) -> HTMLResponse:
    response.set_cookie(
        CSRF_COOKIE,
        csrf,
        httponly=True,
        secure=_secure_cookie(oauth),
        samesite="strict",
        path="/oauth/authorize",
    )
    return response


@router.get(
    "/oauth/authorize",
    summary="Authorization endpoint: the sign-in page",
    response_class=HTMLResponse,
    responses=_PAGE_ERRORS,
)
async def authorize_page(request: Request) -> Response:
    oauth = services_of(request).oauth
    lang = _lang(request)
    params = _authorization_params(list(request.query_params.multi_items()))
    checked = await run_in_threadpool(_check_request, oauth, params)
    if checked is None:
        # Not redirected: the client or its redirect_uri may be an attacker's (RFC 6749 §4.1.2.1).
        return _page(lang, f'<p role="alert">{_TEXT[lang]["invalid"]}</p>', 400)
    login, client_name = checked
    user = oauth.sessions.open(request.cookies.get(SESSION_COOKIE))
    if (
        user is not None
        and user.kind == login
        and not oauth.revocations.is_session_revoked(user.session_id)
    ):
        return await run_in_threadpool(_redirect, oauth, params, user)
    csrf = secrets.token_urlsafe(24)
    return _with_csrf(oauth, _login_form(lang, login, client_name, params, csrf), csrf)


@router.post(
    "/oauth/authorize",
    summary="Authorization endpoint: sign-in submission",
    response_class=HTMLResponse,
    responses={**_PAGE_ERRORS, **responses(408, 413)},
)
async def authorize_submit(request: Request) -> Response:
    oauth = services_of(request).oauth
    pairs = await _form(request)
    form = dict(pairs)
    lang = _lang(request, form)
    params = _authorization_params(pairs)
    checked = await run_in_threadpool(_check_request, oauth, params)
    if checked is None:
        return _page(lang, f'<p role="alert">{_TEXT[lang]["invalid"]}</p>', 400)
    login, client_name = checked
    cookie = request.cookies.get(CSRF_COOKIE, "")
    csrf = secrets.token_urlsafe(24)
    if not cookie or not hmac.compare_digest(cookie, form.get("csrf", "")):
        # Login CSRF: a form posted from elsewhere would sign the victim into our account.
        return _with_csrf(
            oauth, _login_form(lang, login, client_name, params, csrf, "failed"), csrf
        )
    authenticator: Authenticator = oauth.authenticators[login]
    try:
        user = await run_in_threadpool(authenticator.authenticate, form)
    except LoginFailed as failure:
        error = "locked" if failure.locked else "reused" if failure.reused else "failed"
        # The account under a keyed tag, never the IDCS or the username it was typed as.
        account = form.get("idcs") if login == "citizen" else form.get("username")
        services_of(request).security_events.record(
            "account_locked" if failure.locked else "sign_in_failed",
            f"{login}_{error}",
            route=route_template(request.scope),
            source=source_of(request),
            account=f"{login}:{account}" if account else None,
        )
        return _with_csrf(oauth, _login_form(lang, login, client_name, params, csrf, error), csrf)
    return await run_in_threadpool(_redirect, oauth, params, user)


# -- RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) ---------------------------


def _end_session(oauth: OAuthService, params: dict[str, str]) -> str | None:
    """Ends the sign-in the ``id_token_hint`` names; returns where to send the browser
    (None: show our own page). Raises ValueError with the page's message key."""
    hint = params.get("id_token_hint")
    if not hint:
        # Without the hint anyone could sign a citizen out from another site (logout CSRF).
        raise ValueError("logout_needs_hint")
    try:
        claims = oauth.verifier.id_token_hint(hint)
    except InvalidToken:
        raise ValueError("logout_invalid") from None
    client_id = str(claims.get("azp") or claims["aud"])
    if params.get("client_id", client_id) != client_id:
        raise ValueError("logout_invalid")
    client = oauth.server.query_client(client_id)
    target = params.get("post_logout_redirect_uri")
    # §3: only a URI the client registered, matched exactly, or we would be an open redirect.
    if target and (client is None or not client.check_redirect_uri(target)):
        raise ValueError("logout_invalid")
    sid = claims.get("sid")
    if isinstance(sid, str):
        # A sealed session cookie lives ttl_s from its last use and a token minted then lives
        # the issuer's ttl_s more: the revocation outlasts both.
        until = int(time.time()) + oauth.sessions.ttl_s + oauth.issuer.ttl_s
        oauth.revocations.revoke_session(sid, client_id, until)
    if not target:
        return None
    state = params.get("state")
    return add_params_to_uri(target, [("state", state)]) if state else target


async def _logout(request: Request, params: dict[str, str]) -> Response:
    oauth = services_of(request).oauth
    lang = _lang(request, params)
    try:
        target = await run_in_threadpool(_end_session, oauth, params)
    except ValueError as refused:
        # Not redirected: the target is not one this client registered.
        return _page(lang, f'<p role="alert">{_TEXT[lang][str(refused)]}</p>', 400)
    response: Response = (
        RedirectResponse(target, status_code=303, headers=NO_STORE)
        if target
        else _page(lang, f"<p>{_TEXT[lang]['signed_out']}</p>")
    )
    response.delete_cookie(SESSION_COOKIE, path="/oauth/authorize")
    return response


_LOGOUT_RESPONSES: dict[int | str, dict[str, Any]] = {
    303: {"description": "Signed out; back to the client's registered post_logout_redirect_uri"},
    400: {
        "description": "Invalid sign-out request (no or a foreign id_token_hint, or a target "
        "the client did not register)",
        "content": {"text/html": {"schema": {"type": "string"}}},
    },
}


@router.get(
    "/oauth/logout",
    summary="End-session endpoint (OpenID Connect RP-Initiated Logout 1.0)",
    response_class=HTMLResponse,
    responses=_LOGOUT_RESPONSES,
)
async def logout(request: Request) -> Response:
    return await _logout(request, dict(request.query_params))


@router.post(
    "/oauth/logout",
    summary="End-session endpoint, form-posted (OpenID Connect RP-Initiated Logout 1.0 §2)",
    response_class=HTMLResponse,
    responses={**_LOGOUT_RESPONSES, **responses(408, 413)},
)
async def logout_submit(request: Request) -> Response:
    return await _logout(request, dict(await _form(request)))
