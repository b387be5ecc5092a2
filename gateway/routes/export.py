"""``GET /v1/me/export``: everything Sijill holds about the caller, in one portable JSON document
(Law 09.08 art. 7, right of access: the data, its purposes, its recipients, and the logic of
automated decisions).

Each section is built by the same function as the route that serves it alone, under the
export's own decisions (action ``export_own_data``), so the document says exactly what those
routes say. docs/privacy.md describes it member by member.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import APIRouter, Depends

from audit import AuditUnavailable, NotYetCheckpointed
from gateway.admission import authorize
from gateway.authz import Enforcer
from gateway.problems import Problem, responses
from gateway.rectification import my_requests
from gateway.reviews import my_reviews
from gateway.routes.me import (
    RECEIPT_WAIT_S,
    AccessLogEntry,
    Language,
    _own,
    access_log_page,
    consent_views,
    objection_views,
    own_person,
    own_score,
)
from gateway.routes.me_household import my_household, my_household_history
from gateway.routes.notifications import own_choice
from gateway.services import Services, get_services
from gateway.timefmt import public_times, rfc3339

router = APIRouter(
    prefix="/v1/me",
    tags=["citizens"],
    responses=responses(400, 401, 403, 404, 408, 413, 422, 503),
)
FORMAT = "sijill-personal-data-export/1"
_PAGE = 200


@router.get(
    "/export",
    summary="Everything held about me in one JSON document, with receipts for each access",
)
def export(
    lang: Language = "fr",
    enforcer: Enforcer = Depends(authorize("export_own_data", kinds=["citizen"])),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    idcs = enforcer.principal.subject
    # The sections the person owns outright; the others are decided apart, each for the
    # vault records it reads, as their own routes decide them.
    _own(enforcer, services, kind="export")
    document: dict[str, Any] = {
        "format": FORMAT,
        "generated_at": rfc3339(time.time_ns()),
        "idcs": idcs,
        **own_person(services, enforcer, idcs),
        "household": _section(lambda: my_household(enforcer=enforcer, services=services)),
        "household_history": _section(
            lambda: my_household_history(enforcer=enforcer, services=services).model_dump()
        ),
        "score": _section(lambda: own_score(services, enforcer, idcs, lang)),
        "consents": consent_views(services, idcs),
        "objections": objection_views(services, idcs),
        "reviews": [public_times(r) for r in my_reviews(services, enforcer)],
        "rectification_requests": [public_times(r) for r in my_requests(services, enforcer)],
        "pseudonyms": _pseudonym_section(services, idcs, enforcer.subject_tag(idcs)),
        "notifications": _notification_section(services, enforcer),
        "access_log": list(_access_log(services, enforcer.subject_tag(idcs))),
    }
    return document


def _section(build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A section its own route serves, or why there is none: the problem type that route
    answers with (``no-household``, ``not-scored``)."""
    try:
        return {"available": True, **build()}
    except Problem as problem:
        if problem.status in {404, 409}:
            return {"available": False, "reason": problem.kind}
        raise


def _notification_section(services: Services, enforcer: Enforcer) -> dict[str, Any] | None:
    """How the person chose to be told of the uses of their record, with the address they
    gave (kept in the vault); None when they made no choice."""
    found = own_choice(services, enforcer)
    return found.model_dump() if found is not None else None


def _pseudonym_section(services: Services, idcs: str, tag: str) -> list[dict[str, Any]]:
    """Which sectors hold a pseudonym of the person and which agencies the processing registry
    lets use it; never the pseudonyms' values (they would link the person across requests).
    A law-enforcement sector that holds one under a court order still under embargo is left
    out until the embargo ends, as the order's accesses are."""
    agencies: dict[str, set[str]] = {}
    for entry in services.registry:
        agencies.setdefault(entry.sector, set()).update(entry.agencies)
    hidden = services.court_orders.embargoed_sectors(tag, services.oauth.registry)
    return [
        {
            "sector": held.sector,
            "key_version": held.key_version,
            "since": rfc3339(int(held.since.timestamp() * 1_000_000_000)),
            "agencies": sorted(agencies.get(held.sector, ())),
        }
        for held in services.pseudonyms.sectors_of(idcs)
        if held.sector not in hidden
    ]


def _access_log(services: Services, tag: str) -> Iterator[dict[str, Any]]:
    """The whole access log as ``GET /v1/me/access-log`` pages it, newest first, each entry
    with its receipt (entry, inclusion proof, signed checkpoint) checkable offline; an entry
    the checkpointer has not signed yet carries only the address of its receipt."""
    before: int | None = None
    while True:
        page = access_log_page(services, tag, before=before, limit=_PAGE, include_own=False)
        for entry in page.entries:
            yield {**entry.model_dump(), "receipt_document": _receipt(services, entry)}
        if page.next_before is None:
            return
        before = page.next_before


def _receipt(services: Services, entry: AccessLogEntry) -> dict[str, Any] | None:
    try:
        return services.audit.receipt(entry.index, wait_s=RECEIPT_WAIT_S)
    except NotYetCheckpointed:
        return None
    except AuditUnavailable:
        raise Problem(
            503,
            "audit-unavailable",
            "The audit log store is unreachable; try again.",
            headers={"Retry-After": "5"},
        ) from None
