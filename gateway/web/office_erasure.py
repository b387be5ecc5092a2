"""The office's erasure queue (``/office/erasures``): an officer asks for a person's erasure
on a legal ground; a second officer approves (carried out at once) or refuses it. The four-eyes
rule is the API's (``POST /v1/rnp/erasure-requests/{id}/approve`` answers 403 ``four-eyes`` to
the requester); the page shows that refusal in words."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.erasure import GROUNDS, STATUSES
from gateway.web.core import ApiError, room_of

CLIENT = "office"
DECISIONS = ("approve", "refuse")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_IDCS = re.compile(r"[2-9][0-9]{9}")


async def erasures(request: Request) -> Response:
    room = room_of(request)
    session = room.session(request, CLIENT)
    if session is None:
        return room.sign_in(request, CLIENT)
    status = request.query_params.get("status", "awaiting_approval")
    if status not in STATUSES:
        status = "awaiting_approval"
    try:
        body = await room.api(session, "GET", "/v1/rnp/erasure-requests", params={"status": status})
    except ApiError as exc:
        return room.api_failed(request, CLIENT, exc)
    return room.render(
        request,
        "office/erasures.html",
        {"items": body["items"], "status": status, "statuses": STATUSES, "grounds": GROUNDS},
        session=session,
    )


async def ask_erasure(request: Request) -> Response:
    room = room_of(request)
    checked = await room.checked_post(request, CLIENT)
    if isinstance(checked, Response):
        return checked
    session, form = checked
    idcs, ground = form.get("idcs", "").strip(), form.get("ground", "")
    reference, statement = form.get("reference", "").strip(), form.get("statement", "").strip()
    if not _IDCS.fullmatch(idcs) or ground not in GROUNDS or not reference:
        return room.render(request, "error.html", {"message": "error.invalid"}, status=422)
    try:
        opened = await room.api(
            session,
            "POST",
            f"/v1/rnp/persons/{idcs}/erasure",
            json={"ground": ground, "reference": reference, "statement": statement or None},
        )
    except ApiError as exc:
        return room.api_failed(request, CLIENT, exc)
    return room.redirect(f"/office/erasures/{opened['id']}?done=requested")


async def erasure(request: Request, refusal: str = "", status: int = 200) -> Response:
    room = room_of(request)
    session = room.session(request, CLIENT)
    if session is None:
        return room.sign_in(request, CLIENT)
    request_id = str(request.path_params["request_id"])
    if not _UUID.fullmatch(request_id):
        return room.error(request, CLIENT, "error.not_found", 404)
    try:
        body = await room.api(session, "GET", f"/v1/rnp/erasure-requests/{request_id}")
    except ApiError as exc:
        return room.api_failed(request, CLIENT, exc)
    return room.render(
        request,
        "office/erasure.html",
        {"req": body, "done": request.query_params.get("done", ""), "refusal": refusal},
        session=session,
        status=status,
    )


async def decide_erasure(request: Request) -> Response:
    room = room_of(request)
    checked = await room.checked_post(request, CLIENT)
    if isinstance(checked, Response):
        return checked
    session, form = checked
    request_id, decision = str(request.path_params["request_id"]), request.path_params["decision"]
    if not _UUID.fullmatch(request_id) or decision not in DECISIONS:
        return room.error(request, CLIENT, "error.not_found", 404)
    reason = form.get("reason", "").strip()
    if decision == "refuse" and not reason:
        return room.render(request, "error.html", {"message": "error.invalid"}, status=422)
    try:
        await room.api(
            session,
            "POST",
            f"/v1/rnp/erasure-requests/{request_id}/{decision}",
            json={"reason": reason} if decision == "refuse" else None,
        )
    except ApiError as exc:
        if exc.status == 403 and _kind(exc.body) == "four-eyes":
            # The requester tried to approve their own request: the page says so.
            return await erasure(request, refusal="four_eyes", status=403)
        return room.api_failed(request, CLIENT, exc)
    return room.redirect(f"/office/erasures/{request_id}?done={decision}")


def _kind(body: Any) -> str:
    kind = body.get("type", "") if isinstance(body, dict) else ""
    return str(kind).rsplit("/", 1)[-1]


def routes() -> list[BaseRoute]:
    return [
        Route("/erasures", erasures),
        Route("/erasures", ask_erasure, methods=["POST"]),
        Route("/erasures/{request_id}", erasure),
        Route("/erasures/{request_id}/{decision:str}", decide_erasure, methods=["POST"]),
    ]
