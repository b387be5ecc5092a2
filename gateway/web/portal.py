"""The citizen portal (``/portal``): my access log and its in-browser verification, my
consents, my data, my score, my objections, my notifications (``portal_notices.py``). Each
page reads the JSON API with the session's own token, so every read is decided by the policy
and on the record like any other."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.web.core import ApiError, WebRoom, room_of, session_routes, signed_in
from gateway.web.sessions import WebSession
from gateway.web.words import agency_names, consent_purposes, programs

CLIENT = "portal"
PAGE = 20
OUTCOMES = ("allow", "deny", "error")
OBJECTION_REASONS = ("personal_situation", "direct_marketing", "other")


async def _checked_post(request: Request) -> tuple[WebRoom, WebSession, dict[str, str]] | Response:
    """A form post of a signed-in citizen carrying the session's CSRF token, else a refusal."""
    room = room_of(request)
    checked = await room.checked_post(request, CLIENT)
    if isinstance(checked, Response):
        return checked
    return room, checked[0], checked[1]


# -- home (sign-in, sign-out and the language pick: gateway/web/core.py session_routes) ------


async def home(request: Request) -> Response:
    room, session = signed_in(request, CLIENT)
    return room.render(
        request,
        "portal/home.html",
        {"signed_out": request.query_params.get("signed_out") == "1"},
        session=session,
    )


# -- access log ---------------------------------------------------------------------------------


async def access_log(request: Request) -> Response:
    room, session = signed_in(request, CLIENT)
    if session is None:
        return room.sign_in(request, CLIENT)
    agency = request.query_params.get("agency", "")
    outcome = request.query_params.get("outcome", "")
    before = request.query_params.get("before", "")
    params: dict[str, Any] = {"limit": 200}
    if before.isdigit():
        params["before"] = before
    try:
        body = await room.api(session, "GET", "/v1/me/access-log", params=params)
    except ApiError as exc:
        return room.api_failed(request, CLIENT, exc)
    names = agency_names(request)
    rows = [
        e
        for e in body["entries"]
        if (not agency or e["agency"] == agency)
        and (outcome not in OUTCOMES or e["outcome"] == outcome)
    ]
    shown = rows[:PAGE]
    more = len(rows) > PAGE or body.get("next_before") is not None
    next_before = shown[-1]["index"] if shown and more else None
    agencies = sorted({e["agency"] for e in body["entries"] if e["agency"]})
    return room.render(
        request,
        "portal/log.html",
        {
            "entries": shown,
            "names": names,
            "agencies": [(a, names.get(a, a)) for a in agencies],
            "agency": agency,
            "outcome": outcome,
            "outcomes": OUTCOMES,
            "next_before": next_before,
        },
        session=session,
    )


async def receipt(request: Request) -> Response:
    """The entry's receipt, for the page's script to check in the browser."""
    room, session = signed_in(request, CLIENT)
    if session is None:
        return room.secure(JSONResponse({"error": "signed-out"}, status_code=401))
    index = request.path_params["index"]
    try:
        body = await room.api(session, "GET", f"/v1/me/access-log/{index}/receipt")
    except ApiError as exc:
        return room.secure(JSONResponse({"error": "unavailable"}, status_code=exc.status))
    return room.secure(JSONResponse(body))


# -- consents -----------------------------------------------------------------------------------


async def consents(request: Request) -> Response:
    room, session = signed_in(request, CLIENT)
    if session is None:
        return room.sign_in(request, CLIENT)
    try:
        body = await room.api(session, "GET", "/v1/me/consents")
    except ApiError as exc:
        return room.api_failed(request, CLIENT, exc)
    return room.render(
        request,
        "portal/consents.html",
        {
            "consents": body["consents"],
            "purposes": consent_purposes(request),
            "names": agency_names(request),
            "done": request.query_params.get("done", ""),
        },
        session=session,
    )


async def give_consent(request: Request) -> Response:
    checked = await _checked_post(request)
    if isinstance(checked, Response):
        return checked
    room, session, form = checked
    chosen = next((p for p in consent_purposes(request) if p["key"] == form.get("choice")), None)
    if chosen is None:
        return room.render(request, "error.html", {"message": "error.invalid"}, status=422)
    expires = datetime.now(UTC) + timedelta(days=int(chosen["max_days"]))
    payload = {
        "recipient": chosen["agency"],
        "purpose": chosen["purpose"],
        "fields": chosen["fields"],
        "expires_at": expires.isoformat().replace("+00:00", "Z"),
        "collection_method": "portal",
    }
    try:
        await room.api(session, "POST", "/v1/me/consents", json=payload)
    except ApiError as exc:
        return room.api_failed(request, CLIENT, exc)
    return room.redirect("/portal/consents?done=given")


async def withdraw_consent(request: Request) -> Response:
    checked = await _checked_post(request)
    if isinstance(checked, Response):
        return checked
    room, session, _ = checked
    consent_id = request.path_params["consent_id"]
    try:
        await room.api(session, "DELETE", f"/v1/me/consents/{consent_id}")
    except ApiError as exc:
        return room.api_failed(request, CLIENT, exc)
    return room.redirect("/portal/consents?done=withdrawn")


async def consent_receipt(request: Request) -> Response:
    room, session = signed_in(request, CLIENT)
    if session is None:
        return room.sign_in(request, CLIENT)
    consent_id = request.path_params["consent_id"]
    try:
        body = await room.api(session, "GET", "/v1/me/consents")
    except ApiError as exc:
        return room.api_failed(request, CLIENT, exc)
    found = next((c for c in body["consents"] if c["id"] == consent_id), None)
    if found is None:
        return room.render(request, "error.html", {"message": "error.not_found"}, status=404)
    response = Response(
        str(found["receipt"]),
        media_type="application/jwt",
        headers={"Content-Disposition": f'attachment; filename="consent-{consent_id}.jwt"'},
    )
    return room.secure(response)


# -- my data ------------------------------------------------------------------------------------


async def my_data(request: Request) -> Response:
    room, session = signed_in(request, CLIENT)
    if session is None:
        return room.sign_in(request, CLIENT)
    try:
        body = await room.api(session, "GET", "/v1/me/data")
    except ApiError as exc:
        return room.api_failed(request, CLIENT, exc)
    if request.url.path.endswith(".json"):
        response = Response(
            json.dumps(body, ensure_ascii=False, indent=2),
            media_type="application/json",
            headers={"Content-Disposition": 'attachment; filename="my-data.json"'},
        )
        return room.secure(response)
    return room.render(request, "portal/data.html", {"data": body}, session=session)


# -- my score -----------------------------------------------------------------------------------


async def my_score(request: Request) -> Response:
    room, session = signed_in(request, CLIENT)
    if session is None:
        return room.sign_in(request, CLIENT)
    lang = room.lang(request)
    score: dict[str, Any] | None
    try:
        score = await room.api(session, "GET", "/v1/me/score", params={"lang": lang})
    except ApiError as exc:
        if exc.status not in (404, 409):
            return room.api_failed(request, CLIENT, exc)
        score = None
    reviews: list[dict[str, Any]] = []
    if score is not None:
        try:
            reviews = (await room.api(session, "GET", "/v1/me/score/reviews"))["items"]
        except ApiError as exc:
            return room.api_failed(request, CLIENT, exc)
    bars: list[dict[str, Any]] = []
    if score is not None:
        items = [
            {
                "label": score["territorial"]["label"],
                "value": float(score["territorial"]["contribution"]),
            },
            *(
                {"label": c["label"], "value": float(c["contribution"])}
                for c in score["contributions"]
            ),
        ]
        widest = max((abs(i["value"]) for i in items), default=1.0) or 1.0
        bars = [{**i, "share": abs(i["value"]) / widest} for i in items]
    return room.render(
        request,
        "portal/score.html",
        {
            "score": score,
            "reviews": reviews,
            "bars": bars,
            "programs": programs(),
            "done": request.query_params.get("done", ""),
        },
        session=session,
    )


async def request_review(request: Request) -> Response:
    checked = await _checked_post(request)
    if isinstance(checked, Response):
        return checked
    room, session, _ = checked
    try:
        await room.api(session, "POST", "/v1/me/score/review")
    except ApiError as exc:
        return room.api_failed(request, CLIENT, exc)
    return room.redirect("/portal/score?done=review")


# -- objections ---------------------------------------------------------------------------------


async def objections(request: Request) -> Response:
    room, session = signed_in(request, CLIENT)
    if session is None:
        return room.sign_in(request, CLIENT)
    try:
        body = await room.api(session, "GET", "/v1/me/objections")
    except ApiError as exc:
        return room.api_failed(request, CLIENT, exc)
    purposes = sorted({p["purpose"] for p in consent_purposes(request, consent_only=False)})
    return room.render(
        request,
        "portal/objections.html",
        {
            "objections": body["objections"],
            "purposes": purposes,
            "reasons": OBJECTION_REASONS,
            "done": request.query_params.get("done", ""),
        },
        session=session,
    )


async def submit_objection(request: Request) -> Response:
    checked = await _checked_post(request)
    if isinstance(checked, Response):
        return checked
    room, session, form = checked
    payload = {"purpose": form.get("purpose") or None, "reason": form.get("reason", "")}
    if payload["reason"] not in OBJECTION_REASONS or not payload["purpose"]:
        return room.render(request, "error.html", {"message": "error.invalid"}, status=422)
    try:
        await room.api(session, "POST", "/v1/me/objections", json=payload)
    except ApiError as exc:
        return room.api_failed(request, CLIENT, exc)
    return room.redirect("/portal/objections?done=objected")


def routes() -> list[BaseRoute]:
    from gateway.web import activation, portal_household, portal_notices, portal_requests

    return [
        Route("/", home),
        *session_routes(CLIENT, "/portal", "/portal/log"),
        Route("/log", access_log),
        Route("/log/{index:int}/receipt.json", receipt),
        Route("/consents", consents),
        Route("/consents", give_consent, methods=["POST"]),
        Route("/consents/{consent_id}/withdraw", withdraw_consent, methods=["POST"]),
        Route("/consents/{consent_id}/receipt", consent_receipt),
        Route("/data", my_data),
        Route("/data.json", my_data),
        Route("/score", my_score),
        Route("/score/review", request_review, methods=["POST"]),
        Route("/objections", objections),
        Route("/objections", submit_objection, methods=["POST"]),
        *portal_notices.routes(),
        *activation.routes(),
        *portal_household.routes(),
        *portal_requests.routes(),
    ]
