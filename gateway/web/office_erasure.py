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
from gateway.web.office import CLIENT, decide, item_page, queue_page

API = "/v1/rnp/erasure-requests/{id}"
# The queue opens on what awaits a second officer.
OPEN_FIRST = ("awaiting_approval", *(s for s in STATUSES if s != "awaiting_approval"))
_IDCS = re.compile(r"[2-9][0-9]{9}")


async def erasures(request: Request) -> Response:
    return await queue_page(
        request, "/v1/rnp/erasure-requests", "office/erasures.html", OPEN_FIRST, grounds=GROUNDS
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


async def erasure(request: Request) -> Response:
    return await item_page(request, API, "office/erasure.html")


async def decide_erasure(request: Request) -> Response:
    return await decide(request, API, "/office/erasures/{id}", refused=_four_eyes)


async def _four_eyes(request: Request, exc: ApiError) -> Response | None:
    """The requester tried to approve their own request: the page says so, in words."""
    if exc.status != 403 or _kind(exc.body) != "four-eyes":
        return None
    return await item_page(request, API, "office/erasure.html", status=403, refusal="four_eyes")


def _kind(body: Any) -> str:
    kind = body.get("type", "") if isinstance(body, dict) else ""
    return str(kind).rsplit("/", 1)[-1]


def routes() -> list[BaseRoute]:
    return [
        Route("/erasures", erasures),
        Route("/erasures", ask_erasure, methods=["POST"]),
        Route("/erasures/{id}", erasure),
        Route("/erasures/{id}/{decision:str}", decide_erasure, methods=["POST"]),
    ]
