"""The registration office's desks (``/office``): the human review desk (Law 09.08 art. 11),
the rectification queue (art. 8) and the erasure queue (``office_erasure``). An officer signs
in by name (user name, password and TOTP code) through the ``office`` client; every read and
decision goes through the office API with the officer's own token, so each one is decided,
named and on the record."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.web.core import ApiError, WebRoom, local_path, room_of
from gateway.web.sessions import WebSession

CLIENT = "office"
REVIEW_STATUSES = ("pending", "confirmed", "corrected", "overridden")
REQUEST_STATUSES = ("pending", "accepted", "refused")
OUTCOMES = ("confirm", "correct", "override")
DECISIONS = ("accept", "refuse")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _signed_in(request: Request) -> tuple[WebRoom, WebSession | None]:
    room = room_of(request)
    return room, room.session(request, CLIENT)


async def home(request: Request) -> Response:
    room, session = _signed_in(request)
    if session is None:
        return room.render(
            request,
            "office/signin.html",
            {"signed_out": request.query_params.get("signed_out") == "1"},
        )
    return room.redirect("/office/reviews")


async def sign_in(request: Request) -> Response:
    target = local_path(request.query_params.get("next"), "/office/reviews")
    return room_of(request).sign_in(request, CLIENT, target)


async def callback(request: Request) -> Response:
    return room_of(request).callback(request, CLIENT)


async def sign_out(request: Request) -> Response:
    room = room_of(request)
    checked = await room.checked_post(request, CLIENT)
    if isinstance(checked, Response):
        return checked
    return room.sign_out(request, CLIENT, checked[0])


async def language(request: Request) -> Response:
    return room_of(request).pick_language(request, "/office/")


def _id(request: Request, name: str) -> str | None:
    """A path's request id, only if it is one (it goes into an API path)."""
    value = str(request.path_params[name])
    return value if _UUID.fullmatch(value) else None


def _status(request: Request, allowed: tuple[str, ...]) -> str:
    status = request.query_params.get("status", "pending")
    return status if status in allowed else "pending"


# -- the review desk ----------------------------------------------------------------------------


async def reviews(request: Request) -> Response:
    room, session = _signed_in(request)
    if session is None:
        return room.sign_in(request, CLIENT)
    status = _status(request, REVIEW_STATUSES)
    try:
        body = await room.api(session, "GET", "/v1/reviews", params={"status": status})
    except ApiError as exc:
        return room.api_failed(request, CLIENT, exc)
    return room.render(
        request,
        "office/reviews.html",
        {"items": body["items"], "status": status, "statuses": REVIEW_STATUSES},
        session=session,
    )


async def review(request: Request) -> Response:
    room, session = _signed_in(request)
    if session is None:
        return room.sign_in(request, CLIENT)
    review_id = _id(request, "review_id")
    if review_id is None:
        return room.error(request, CLIENT, "error.not_found", 404)
    try:
        body = await room.api(
            session, "GET", f"/v1/reviews/{review_id}", params={"lang": room.lang(request)}
        )
    except ApiError as exc:
        return room.api_failed(request, CLIENT, exc)
    return room.render(
        request,
        "office/review.html",
        {"review": body, "outcomes": OUTCOMES, "done": request.query_params.get("done", "")},
        session=session,
    )


async def decide_review(request: Request) -> Response:
    room = room_of(request)
    checked = await room.checked_post(request, CLIENT)
    if isinstance(checked, Response):
        return checked
    session, form = checked
    review_id = _id(request, "review_id")
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
    room, session = _signed_in(request)
    if session is None:
        return room.sign_in(request, CLIENT)
    status = _status(request, REQUEST_STATUSES)
    try:
        body = await room.api(
            session, "GET", "/v1/rnp/rectification-requests", params={"status": status}
        )
    except ApiError as exc:
        return room.api_failed(request, CLIENT, exc)
    return room.render(
        request,
        "office/rectifications.html",
        {"items": body["items"], "status": status, "statuses": REQUEST_STATUSES},
        session=session,
    )


async def rectification(request: Request) -> Response:
    room, session = _signed_in(request)
    if session is None:
        return room.sign_in(request, CLIENT)
    request_id = _id(request, "request_id")
    if request_id is None:
        return room.error(request, CLIENT, "error.not_found", 404)
    try:
        body = await room.api(session, "GET", f"/v1/rnp/rectification-requests/{request_id}")
    except ApiError as exc:
        return room.api_failed(request, CLIENT, exc)
    return room.render(
        request,
        "office/rectification.html",
        {"req": body, "done": request.query_params.get("done", "")},
        session=session,
    )


async def decide_rectification(request: Request) -> Response:
    room = room_of(request)
    checked = await room.checked_post(request, CLIENT)
    if isinstance(checked, Response):
        return checked
    session, form = checked
    request_id = _id(request, "request_id")
    if request_id is None:
        return room.error(request, CLIENT, "error.not_found", 404)
    decision = str(request.path_params["decision"])
    if decision not in DECISIONS:
        return room.error(request, CLIENT, "error.not_found", 404)
    reason = form.get("reason", "").strip()
    if decision == "refuse" and not reason:
        return room.render(request, "error.html", {"message": "error.invalid"}, status=422)
    try:
        await room.api(
            session,
            "POST",
            f"/v1/rnp/rectification-requests/{request_id}/{decision}",
            json={"reason": reason} if decision == "refuse" else None,
        )
    except ApiError as exc:
        return room.api_failed(request, CLIENT, exc)
    return room.redirect(f"/office/rectifications/{request_id}?done={decision}")


def routes() -> list[BaseRoute]:
    from gateway.web import office_erasure

    return [
        Route("/", home),
        Route("/signin", sign_in),
        Route("/callback", callback),
        Route("/signout", sign_out, methods=["POST"]),
        Route("/language", language),
        Route("/reviews", reviews),
        Route("/reviews/{review_id}", review),
        Route("/reviews/{review_id}/decision", decide_review, methods=["POST"]),
        Route("/rectifications", rectifications),
        Route("/rectifications/{request_id}", rectification),
        Route(
            "/rectifications/{request_id}/{decision:str}",
            decide_rectification,
            methods=["POST"],
        ),
        *office_erasure.routes(),
    ]
