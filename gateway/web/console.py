"""The CNDP auditor console (``/console``): the latest signed checkpoint and its age, a whole-
log verification run in the inspector's browser, the pseudonymised entries, statistics, the
processing registry and the policy revisions. Every read goes through the auditor-only API
with the inspector's own token, so each one is itself decided and on the record."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.court_orders import REFERENCE_PATTERN
from gateway.security import SECURITY_KINDS
from gateway.web.core import ApiError, session_routes, signed_in
from gateway.web.words import agency_names, declared_agencies
from identity.oauth import OFFICIAL_ID_PATTERN

CLIENT = "console"
PAGE = 50
OUTCOMES = ("allow", "deny", "error")
STATS_DAYS = 7
OFFICIAL = re.compile(OFFICIAL_ID_PATTERN)


async def home(request: Request) -> Response:
    room, session = signed_in(request, CLIENT)
    if session is None:
        return room.render(
            request,
            "console/signin.html",
            {"signed_out": request.query_params.get("signed_out") == "1"},
        )
    try:
        checkpoint = json.loads(await room.public("/v1/audit/checkpoint", {"format": "json"}))
    except ApiError:
        checkpoint = None
    return room.render(request, "console/home.html", {"checkpoint": checkpoint}, session=session)


def _filters(request: Request) -> dict[str, str]:
    q = request.query_params
    keys = ("agency", "official", "court_order", "purpose", "outcome", "security", "since", "until")
    out = {k: q.get(k, "").strip() for k in keys}
    if out["outcome"] not in OUTCOMES:
        out["outcome"] = ""
    if out["security"] not in ("any", *SECURITY_KINDS):
        out["security"] = ""
    if not OFFICIAL.fullmatch(out["official"]):
        out["official"] = ""
    if not re.fullmatch(REFERENCE_PATTERN, out["court_order"]):
        out["court_order"] = ""
    for key in ("since", "until"):
        # An <input type="date"> sends YYYY-MM-DD: the day's start, in UTC.
        if out[key]:
            try:
                day = datetime.strptime(out[key], "%Y-%m-%d").replace(tzinfo=UTC)
            except ValueError:
                out[key] = ""
                continue
            if key == "until":
                day += timedelta(days=1)
            out[key + "_rfc3339"] = day.isoformat().replace("+00:00", "Z")
    return out


async def entries(request: Request) -> Response:
    room, session = signed_in(request, CLIENT)
    if session is None:
        return room.sign_in(request, CLIENT)
    f = _filters(request)
    after = request.query_params.get("after", "")
    params: dict[str, Any] = {
        "agency": f["agency"],
        "official": f["official"] or None,
        "court_order": f["court_order"] or None,
        "purpose": f["purpose"],
        "outcome": f["outcome"],
        "security": f["security"] or None,
        "since": f.get("since_rfc3339"),
        "until": f.get("until_rfc3339"),
        "limit": PAGE,
        "after": after if after.lstrip("-").isdigit() else None,
    }
    try:
        body = await room.api(session, "GET", "/v1/audit/entries", params=params)
    except ApiError as exc:
        return room.api_failed(request, CLIENT, exc)
    names = agency_names(request)
    return room.render(
        request,
        "console/entries.html",
        {
            "entries": body["entries"],
            "next_after": body.get("next_after"),
            "filters": f,
            "outcomes": OUTCOMES,
            "security_kinds": SECURITY_KINDS,
            "agencies": [(a, names.get(a, a)) for a in declared_agencies(request)],
            "names": names,
        },
        session=session,
    )


async def entries_json(request: Request) -> Response:
    """A page of entries for the console's script (the whole-log verification)."""
    room, session = signed_in(request, CLIENT)
    if session is None:
        return room.secure(JSONResponse({"error": "signed-out"}, status_code=401))
    after = request.query_params.get("after", "-1")
    try:
        body = await room.api(
            session,
            "GET",
            "/v1/audit/entries",
            params={"after": after if after.lstrip("-").isdigit() else "-1", "limit": 500},
        )
    except ApiError as exc:
        return room.secure(JSONResponse({"error": "unavailable"}, status_code=exc.status))
    for entry in body["entries"]:
        # The canonical entry holds time_ns as a decimal string (beyond a script's exact
        # integers); handed back in that form, the script rebuilds the hashed bytes exactly.
        entry["time_ns"] = str(entry["time_ns"])
    return room.secure(JSONResponse(body))


def _chart(counter: Counter[str]) -> list[dict[str, Any]]:
    widest = max(counter.values(), default=1) or 1
    return [
        {"key": key, "count": count, "share": count / widest}
        for key, count in counter.most_common()
    ]


async def stats(request: Request) -> Response:
    room, session = signed_in(request, CLIENT)
    if session is None:
        return room.sign_in(request, CLIENT)
    try:
        total = await room.api(session, "GET", "/v1/audit/stats")
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        days = []
        for back in range(STATS_DAYS - 1, -1, -1):
            start = today - timedelta(days=back)
            day = await room.api(
                session,
                "GET",
                "/v1/audit/stats",
                params={
                    "since": start.isoformat().replace("+00:00", "Z"),
                    "until": (start + timedelta(days=1)).isoformat().replace("+00:00", "Z"),
                },
            )
            days.append({"day": start, "by_outcome": day["by_outcome"]})
    except ApiError as exc:
        return room.api_failed(request, CLIENT, exc)
    by_agency: Counter[str] = Counter()
    by_purpose: Counter[str] = Counter()
    by_outcome: Counter[str] = Counter()
    for g in total["groups"]:
        by_agency[g.get("agency") or "-"] += g["count"]
        by_purpose[g.get("purpose") or "-"] += g["count"]
        by_outcome[g["outcome"]] += g["count"]
    busiest = max((sum(d["by_outcome"].values()) for d in days), default=1) or 1
    return room.render(
        request,
        "console/stats.html",
        {
            "total": total,
            "agencies": _chart(by_agency),
            "purposes": _chart(by_purpose),
            "outcomes": _chart(by_outcome),
            "days": days,
            "busiest": busiest,
            "names": agency_names(request),
        },
        session=session,
    )


async def registry(request: Request) -> Response:
    room, session = signed_in(request, CLIENT)
    if session is None:
        return room.sign_in(request, CLIENT)
    try:
        body = await room.api(session, "GET", "/v1/audit/registry")
    except ApiError as exc:
        return room.api_failed(request, CLIENT, exc)
    return room.render(
        request, "console/registry.html", {"entries": body["entries"]}, session=session
    )


async def policies(request: Request) -> Response:
    room, session = signed_in(request, CLIENT)
    if session is None:
        return room.sign_in(request, CLIENT)
    try:
        body = await room.api(session, "GET", "/v1/audit/policy-revisions")
    except ApiError as exc:
        return room.api_failed(request, CLIENT, exc)
    return room.render(request, "console/policies.html", {"body": body}, session=session)


def routes() -> list[BaseRoute]:
    return [
        Route("/", home),
        *session_routes(CLIENT, "/console", "/console/"),
        Route("/entries", entries),
        Route("/entries.json", entries_json),
        Route("/stats", stats),
        Route("/registry", registry),
        Route("/policies", policies),
    ]
