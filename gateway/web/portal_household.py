"""The citizen's household page (``/portal/household``): who is in it (by relation), the
declaration released to them, and each change a registration office made (Law 09.08 art. 7).
Read through the JSON API with the session's own token (``GET /v1/me/household`` and its
``/history``), so each read is decided by the policy and on the record."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.web.core import ApiError, signed_in

CLIENT = "portal"
# The declaration's sections, in the order the questionnaire asks them.
SECTIONS = ("housing", "utilities", "spending", "durables", "agriculture")


async def household(request: Request) -> Response:
    room, session = signed_in(request, CLIENT)
    if session is None:
        return room.sign_in(request, CLIENT)
    mine: dict[str, Any] | None
    changes: list[dict[str, Any]] = []
    try:
        mine = await room.api(session, "GET", "/v1/me/household")
        history = await room.api(session, "GET", "/v1/me/household/history")
        changes = list(reversed(history["changes"]))  # newest first, as the access log
    except ApiError as exc:
        if exc.status != 404:
            return room.api_failed(request, CLIENT, exc)
        mine = None
    sections = []
    if mine is not None:
        declared = mine["declaration"]
        sections = [(name, declared[name]) for name in SECTIONS if declared.get(name)]
    return room.render(
        request,
        "portal/household.html",
        {"household": mine, "sections": sections, "changes": changes},
        session=session,
    )


def routes() -> list[BaseRoute]:
    return [Route("/household", household)]
