"""Activation: an office issues a one-time code, the citizen turns it into a sign-in.

:func:`issue_activation_code` is what an office's request (``POST /v1/rnp/persons/{idcs}/
activation-code``, and the enrolment itself) and ``sijill citizens activation-code`` do: a new
code replaces any earlier one, an existing TOTP secret is disabled (a lost phone), the code is
queued to the citizen through the notifications outbox, and the issue is on the audit record.
The pages (``/portal/activate``) take IDCS and code, show the new secret as a QR code rendered
here (no script, no outside service) and install it once a first code from the app matches.
Forms of a person not signed in carry a token bound to a cookie (double submit).
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import time
from typing import Any
from urllib.parse import quote

import segno
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from audit import Actor, AuditEntry
from gateway.notices import CITIZEN_CHANNEL, NOTICE_ACCOUNT, notice_box
from gateway.services import Services, services_of
from gateway.web.core import form_values, room_of
from identity.activation import ActivationFailed, IssuedCode

ACTION = "activation_code"
FORM_COOKIE = "sijill_web_form"


def issue_activation_code(services: Services, idcs: str, actor: Actor) -> IssuedCode:
    """A new one-time code for an enrolled person (UnknownPerson otherwise); see the module."""
    from sqlalchemy import insert

    from consent.tables import outbox

    services.register.status(idcs)  # raises UnknownPerson
    reissued = services.oauth.citizens.disable(idcs)
    issued = services.activation_codes.issue(idcs, str(actor.get("id") or actor["kind"]))
    now = time.time_ns()
    notice = {"type": "activation_code", "idcs": idcs, "code": issued.code,
              "expires_at": issued.expires_at}  # fmt: skip
    # Sealed: the main database holds the notice until the sender takes it, and a reader of
    # that database must not be able to activate the person's sign-in with the code.
    sealed = notice_box(services.settings.data_dir).seal(json.dumps(notice), NOTICE_ACCOUNT)
    body = {"type": "activation_code", "expires_at": issued.expires_at,
            "sealed": base64.b64encode(sealed).decode()}  # fmt: skip
    with services.engines["main"].begin() as conn:
        conn.execute(
            insert(outbox).values(
                recipient=CITIZEN_CHANNEL,
                event="activation",
                body=json.dumps(body),
                attempts=0,
                next_attempt_ns=now,
            )
        )
    services.audit.append(
        AuditEntry(
            time_ns=now,
            actor=actor,
            action=ACTION,
            subject=services.vault.subject_tag(idcs),
            outcome="allow",
            reasons=["reissued_old_secret_disabled" if reissued else "issued"],
        )
    )
    return issued


# -- pages ---------------------------------------------------------------------------------------


def _form_token(request: Request) -> tuple[str, bool]:
    existing = request.cookies.get(FORM_COOKIE)
    if existing and len(existing) < 100:
        return existing, False
    return secrets.token_urlsafe(32), True


def _render(
    request: Request, template: str, context: dict[str, Any], status: int = 200
) -> Response:
    room = room_of(request)
    token, new = _form_token(request)
    response = room.render(request, template, {**context, "form_token": token}, status=status)
    if new:
        room.set_cookie(response, FORM_COOKIE, token, 3600)
    return response


async def _posted(request: Request) -> dict[str, str] | None:
    values = await form_values(request)
    cookie = request.cookies.get(FORM_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie, values.get("csrf", "")):
        return None
    return values


def _qr(secret: str, idcs: str, issuer: str) -> Markup:
    label = quote(f"Sijill:{idcs}")
    uri = f"otpauth://totp/{label}?secret={secret}&issuer=Sijill&algorithm=SHA1&digits=6&period=30"
    svg = segno.make(uri, error="m").svg_inline(scale=4, border=2, dark="#000", light="#fff")
    return Markup(svg)  # noqa: S704 - segno's own SVG of a URI we built


async def start(request: Request) -> Response:
    return _render(request, "portal/activate.html", {"step": "code"})


async def check_code(request: Request) -> Response:
    room = room_of(request)
    form = await _posted(request)
    if form is None:
        return room.render(request, "error.html", {"message": "error.csrf"}, status=403)
    idcs, code = form.get("idcs", "").strip(), form.get("code", "")
    services: Services = request.app.state.services
    try:
        secret = services.activation_codes.begin(idcs, code)
    except ActivationFailed:
        return _render(
            request, "portal/activate.html", {"step": "code", "failed": True, "idcs": idcs}, 400
        )
    return _render(
        request,
        "portal/activate.html",
        {"step": "scan", "idcs": idcs, "code": code, "secret": secret,
         "qr": _qr(secret, idcs, room.issuer)},
    )  # fmt: skip


async def confirm(request: Request) -> Response:
    room = room_of(request)
    form = await _posted(request)
    if form is None:
        return room.render(request, "error.html", {"message": "error.csrf"}, status=403)
    idcs, code, totp = form.get("idcs", ""), form.get("code", ""), form.get("totp", "").strip()
    services: Services = request.app.state.services
    codes = services.activation_codes
    try:
        secret = codes.confirm(idcs, code, totp)
    except ActivationFailed:
        try:
            secret = codes.begin(idcs, code)
        except ActivationFailed:
            return _render(request, "portal/activate.html", {"step": "code", "failed": True}, 400)
        return _render(
            request,
            "portal/activate.html",
            {"step": "scan", "idcs": idcs, "code": code, "secret": secret, "wrong": True,
             "qr": _qr(secret, idcs, room.issuer)},
            400,
        )  # fmt: skip
    services_of(request).oauth.citizens.enrol(idcs, secret)
    return _render(request, "portal/activate.html", {"step": "done"})


def routes() -> list[BaseRoute]:
    return [
        Route("/activate", start),
        Route("/activate", check_code, methods=["POST"]),
        Route("/activate/confirm", confirm, methods=["POST"]),
    ]
