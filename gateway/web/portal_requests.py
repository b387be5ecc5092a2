"""The citizen's requests to an office, in the portal: rectification of my record (Law 09.08
art. 8) at ``/portal/rectification``. Each page reads and writes through the JSON API with the
session's own token (``/v1/me/rectification-requests``), decided and recorded like any call."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.web.core import ApiError, room_of, signed_in

CLIENT = "portal"
# The fields a citizen may ask to correct, in the form's order (gateway/rectification.py
# PersonChanges); the two with fixed values are choices.
FIELDS = (
    "given_name_ar", "family_name_ar", "given_name_lat", "family_name_lat", "birth_date",
    "birth_place", "cnie", "nationality", "address", "region", "province", "phone",
)  # fmt: skip
CHOICES = {"sex": ("F", "M"), "residency_status": ("citizen", "resident")}


async def rectification(request: Request) -> Response:
    room, session = signed_in(request, CLIENT)
    if session is None:
        return room.sign_in(request, CLIENT)
    try:
        body = await room.api(session, "GET", "/v1/me/rectification-requests")
    except ApiError as exc:
        return room.api_failed(request, CLIENT, exc)
    return room.render(
        request,
        "portal/rectification.html",
        {
            "requests": body["items"],
            "fields": FIELDS,
            "choices": CHOICES,
            "done": request.query_params.get("done", ""),
        },
        session=session,
    )


async def ask_rectification(request: Request) -> Response:
    room = room_of(request)
    checked = await room.checked_post(request, CLIENT)
    if isinstance(checked, Response):
        return checked
    session, form = checked
    changes = {
        name: form[name].strip() for name in (*FIELDS, *CHOICES) if form.get(name, "").strip()
    }
    statement = form.get("statement", "").strip()
    if not changes or not statement:
        return room.render(request, "error.html", {"message": "error.invalid"}, status=422)
    try:
        await room.api(
            session,
            "POST",
            "/v1/me/rectification-requests",
            json={"changes": changes, "statement": statement},
        )
    except ApiError as exc:
        return room.api_failed(request, CLIENT, exc)
    return room.redirect("/portal/rectification?done=sent")


def routes() -> list[BaseRoute]:
    return [
        Route("/rectification", rectification),
        Route("/rectification", ask_rectification, methods=["POST"]),
    ]
