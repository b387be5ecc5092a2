"""The portal's notifications page (``/portal/notifications``): the citizen chooses to be told
of the uses of their record, by e-mail or SMS, for every access, refusals only or accesses on
their consent, in the language they read; or stops. The page goes through
``/v1/me/notifications`` with the session's own token, so each step is decided by the policy
and on the record."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.web.core import ApiError, room_of, signed_in

CLIENT = "portal"
CHANNELS = ("email", "sms")
SCOPES = ("all", "denials", "consent")


async def page(request: Request, *, failed: bool = False) -> Response:
    room, session = signed_in(request, CLIENT)
    if session is None:
        return room.sign_in(request, CLIENT)
    try:
        choice = await room.api(session, "GET", "/v1/me/notifications")
    except ApiError as exc:
        if exc.status != 404:
            return room.api_failed(request, CLIENT, exc)
        choice = None
    return room.render(
        request,
        "portal/notices.html",
        {
            "choice": choice,
            "channels": CHANNELS,
            "scopes": SCOPES,
            "done": request.query_params.get("done", ""),
            "failed": failed,
        },
        session=session,
        status=422 if failed else 200,
    )


async def choose(request: Request) -> Response:
    room = room_of(request)
    checked = await room.checked_post(request, CLIENT)
    if isinstance(checked, Response):
        return checked
    session, form = checked
    payload = {
        "channel": form.get("channel", ""),
        "address": form.get("address", "").strip(),
        "scope": form.get("scope", ""),
        "language": form.get("language", ""),
    }
    try:
        await room.api(session, "PUT", "/v1/me/notifications", json=payload)
    except ApiError as exc:
        if exc.status == 422:
            return await page(request, failed=True)
        return room.api_failed(request, CLIENT, exc)
    return room.redirect("/portal/notifications?done=saved")


async def stop(request: Request) -> Response:
    room = room_of(request)
    checked = await room.checked_post(request, CLIENT)
    if isinstance(checked, Response):
        return checked
    session, _form = checked
    try:
        await room.api(session, "DELETE", "/v1/me/notifications")
    except ApiError as exc:
        if exc.status != 404:
            return room.api_failed(request, CLIENT, exc)
    return room.redirect("/portal/notifications?done=stopped")


def routes() -> list[BaseRoute]:
    return [
        Route("/notifications", page),
        Route("/notifications", choose, methods=["POST"]),
        Route("/notifications/stop", stop, methods=["POST"]),
    ]
