"""The registration office's desks (``/office``): the human review desk (Law 09.08 art. 11),
the rectification queue (art. 8) and the erasure queue (``office_erasure``). An officer signs
in by name (user name, password and TOTP code) through the ``office`` client; every read and
decision goes through the office API with the officer's own token, so each one is decided,
named and on the record."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.web.core import ApiError, room_of, session_routes, signed_in

CLIENT = "office"
REVIEW_STATUSES = ("pending", "confirmed", "corrected", "overridden")
REQUEST_STATUSES = ("pending", "accepted", "refused")
OUTCOMES = ("confirm", "correct", "override")
DECISIONS = ("accept", "approve", "refuse")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


async def home(request: Request) -> Response:
    room, session = signed_in(request, CLIENT)
    if session is None:
        return room.render(
            request,
            "office/signin.html",
            {"signed_out": request.query_params.get("signed_out") == "1"},
        )
    return room.redirect("/office/reviews")


def _id(request: Request) -> str | None:
    """The path's request id, only if it is one (it goes into an API path)."""
    value = str(request.path_params["id"])
    return value if _UUID.fullmatch(value) else None


async def queue_page(
    request: Request,
    api_path: str,
    template: str,
    statuses: tuple[str, ...],
    **context: Any,
) -> Response:
    """A desk's queue filtered by status (the first of ``statuses`` by default)."""
    room, session = signed_in(request, CLIENT)
    if session is None:
        return room.sign_in(request, CLIENT)
    status = request.query_params.get("status", statuses[0])
    if status not in statuses:
        status = statuses[0]
    try:
        body = await room.api(session, "GET", api_path, params={"status": status})
    except ApiError as exc:
        return room.api_failed(request, CLIENT, exc)
    return room.render(
        request,
        template,
        {"items": body["items"], "status": status, "statuses": statuses, **context},
        session=session,
    )


async def item_page(
    request: Request,
    api_path: str,
    template: str,
    *,
    params: dict[str, str] | None = None,
    status: int = 200,
    **context: Any,
) -> Response:
    """One request of a desk (``api_path`` names it by the path's ``{id}``) as ``req``."""
    room, session = signed_in(request, CLIENT)
    if session is None:
        return room.sign_in(request, CLIENT)
    found = _id(request)
    if found is None:
        return room.error(request, CLIENT, "error.not_found", 404)
    try:
        body = await room.api(session, "GET", api_path.format(id=found), params=params)
    except ApiError as exc:
        return room.api_failed(request, CLIENT, exc)
    done = request.query_params.get("done", "")
    return room.render(
        request, template, {"req": body, "done": done, **context}, session=session, status=status
    )


Refusal = Callable[[Request, ApiError], Awaitable[Response | None]]


async def decide(
    request: Request, api_path: str, back: str, *, refused: Refusal | None = None
) -> Response:
    """Post an accept/approve or a refusal (with its reason) of the request the path names,
    then back to its page; ``refused`` may turn an API refusal into a page of its own."""
    room = room_of(request)
    checked = await room.checked_post(request, CLIENT)
    if isinstance(checked, Response):
        return checked
    session, form = checked
    found, decision = _id(request), str(request.path_params["decision"])
    if found is None or decision not in DECISIONS:
        return room.error(request, CLIENT, "error.not_found", 404)
    reason = form.get("reason", "").strip()
    if decision == "refuse" and not reason:
        return room.render(request, "error.html", {"message": "error.invalid"}, status=422)
    try:
        await room.api(
            session,
            "POST",
            f"{api_path.format(id=found)}/{decision}",
            json={"reason": reason} if decision == "refuse" else None,
        )
    except ApiError as exc:
        page = None if refused is None else await refused(request, exc)
        return page if page is not None else room.api_failed(request, CLIENT, exc)
    return room.redirect(f"{back.format(id=found)}?done={decision}")


# -- the review desk ----------------------------------------------------------------------------


async def reviews(request: Request) -> Response:
    return await queue_page(request, "/v1/reviews", "office/reviews.html", REVIEW_STATUSES)


async def review(request: Request) -> Response:
    return await item_page(
        request,
        "/v1/reviews/{id}",
        "office/review.html",
        params={"lang": room_of(request).lang(request)},
        outcomes=OUTCOMES,
    )


async def decide_review(request: Request) -> Response:
    room = room_of(request)
    checked = await room.checked_post(request, CLIENT)
    if isinstance(checked, Response):
        return checked
    session, form = checked
    review_id = _id(request)
    if review_id is None:
        return room.error(request, CLIENT, "error.not_found", 404)
    outcome, reason = form.get("outcome", ""), form.get("reason", "").strip()
    if outcome not in OUTCOMES or not reason:
        return room.render(request, "error.html", {"message": "error.invalid"}, status=422)
    payload: dict[str, Any] = {"outcome": outcome, "reason": reason}
    if outcome == "override":
        payload["eligible"] = form.get("eligible") == "yes"
    if outcome == "correct":
        try:
            current = await room.api(session, "GET", f"/v1/reviews/{review_id}")
        except ApiError as exc:
            return room.api_failed(request, CLIENT, exc)
        payload["declaration"] = _corrected(current["declaration"], form)
    try:
        await room.api(session, "POST", f"/v1/reviews/{review_id}/decision", json=payload)
    except ApiError as exc:
        return room.api_failed(request, CLIENT, exc)
    return room.redirect(f"/office/reviews/{review_id}?done=decided")


# The answers the correction form offers (the questionnaire's numbers an officer most often
# finds miscounted); the rest of the declaration is sent back as the vault holds it.
CORRECTABLE = {
    ("housing", "rooms"): int,
    ("spending", "water"): int,
    ("spending", "electricity"): int,
    ("spending", "telephone"): int,
}


def _corrected(declaration: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in declaration.items()}
    out.pop("members", None)
    for (section, name), kind in CORRECTABLE.items():
        raw = form.get(f"{section}.{name}", "").strip()
        if raw:
            try:
                out[section][name] = kind(raw)
            except ValueError:
                out[section][name] = raw  # the API refuses it, naming the field
    return out


# -- the rectification queue --------------------------------------------------------------------


async def rectifications(request: Request) -> Response:
    return await queue_page(
        request, "/v1/rnp/rectification-requests", "office/rectifications.html", REQUEST_STATUSES
    )


async def rectification(request: Request) -> Response:
    return await item_page(
        request, "/v1/rnp/rectification-requests/{id}", "office/rectification.html"
    )


async def decide_rectification(request: Request) -> Response:
    return await decide(
        request, "/v1/rnp/rectification-requests/{id}", "/office/rectifications/{id}"
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/", home),
        *session_routes(CLIENT, "/office", "/office/reviews"),
        Route("/reviews", reviews),
        Route("/reviews/{id}", review),
        Route("/reviews/{id}/decision", decide_review, methods=["POST"]),
        Route("/rectifications", rectifications),
        Route("/rectifications/{id}", rectification),
        Route(
            "/rectifications/{id}/{decision:str}",
            decide_rectification,
            methods=["POST"],
        ),
    ]
