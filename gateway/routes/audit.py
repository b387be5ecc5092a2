"""The audit log over HTTP (DESIGN.md, "HTTP surface"): checkpoints, the verifier key and
proofs for anyone to check the log; pseudonymised entries and statistics for CNDP auditors.

Checkpoints, the verifier key, consistency and inclusion proofs carry no personal data (hashes
and sizes only) and are public, so that witnesses and citizens can hold the log to its
history. Entries and statistics are for CNDP auditors, through the policy enforcement point
(citizens get their own entries with receipts, /v1/me/access-log).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse

from audit import AuditLog, AuditUnavailable, EntryFilter, InvalidProof
from gateway.admission import authorize
from gateway.authz import Enforcer
from gateway.court_orders import REFERENCE_PATTERN
from gateway.lifecycle import ACTION as POLICY_REVISION
from gateway.params import MAX_INDEX, LogTime
from gateway.problems import Problem, responses
from gateway.routes.registry import declaration
from gateway.security import ACTION_PREFIX, SECURITY_KINDS
from gateway.services import services_of
from gateway.timefmt import rfc3339, to_ns
from identity.oauth import OFFICIAL_ID_PATTERN

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=responses(503))
# The auditor-only reads, and what their parameters may be.
_AUDITOR_ONLY = responses(401, 403, 422)
MAX_PAGE = 500
# ?security=any lists every security event, ?security=<kind> one kind (gateway/security.py).
SECURITY_FILTER = "^(any|" + "|".join(SECURITY_KINDS) + ")$"


def get_audit(request: Request) -> AuditLog:
    return services_of(request).audit


def _audit_read(action: str) -> Callable[..., Enforcer]:
    """An auditor-only read, mediated like every other route: the CNDP auditor's token, one
    policy decision (``policies/data/actions.json``: Law 09.08 art. 27 et seq.), and the read
    itself appended to the log before anything is returned."""
    mediated = authorize(action, kinds=["auditor"])

    def dependency(enforcer: Enforcer = Depends(mediated)) -> Enforcer:
        enforcer.decide(resource={"kind": "audit_log"}, purpose=None).require_allowed()
        return enforcer

    dependency.__name__ = f"audit_read_{action}"
    return dependency


Audit = Annotated[AuditLog, Depends(get_audit)]


def _unavailable() -> Problem:
    return Problem(
        503,
        "audit-unavailable",
        "The audit log is unavailable (its store is unreachable, or it holds no signed "
        "checkpoint yet); try again.",
        headers={"Retry-After": "5"},
    )


def _ns(value: datetime | None) -> int | None:
    return to_ns(value) if value is not None else None


@router.get(
    "/checkpoint",
    response_model=None,
    responses={
        200: {
            "description": "The signed note (text), or its JSON view with ?format=json",
            "content": {"text/plain": {"schema": {"type": "string"}}, "application/json": {}},
        },
        **responses(400),
    },
)
def checkpoint(audit: Audit, format: str | None = None) -> PlainTextResponse | dict[str, Any]:
    """The latest signed checkpoint (C2SP tlog-checkpoint); ``?format=json`` for a JSON view."""
    try:
        cp = audit.checkpoint()
    except AuditUnavailable:
        raise _unavailable() from None
    if format == "json":
        return {
            "origin": cp.origin,
            "tree_size": cp.tree_size,
            "root_hash": cp.root_hash.hex(),
            "timestamp": rfc3339(cp.timestamp_ns) if cp.timestamp_ns is not None else None,
            "note": cp.note,
        }
    if format not in (None, "note", "text"):
        raise Problem(400, "bad-request", "format must be 'json' or omitted")
    return PlainTextResponse(cp.note, media_type="text/plain; charset=utf-8")


@router.get("/verifier-key", response_class=PlainTextResponse)
def verifier_key(audit: Audit) -> PlainTextResponse:
    """The C2SP note verifier key ``<name>+<hex key id>+<base64(0x01 ‖ Ed25519 key)>``."""
    try:
        key = audit.verifier_key
    except AuditUnavailable:
        raise _unavailable() from None
    return PlainTextResponse(key + "\n", media_type="text/plain; charset=utf-8")


@router.get("/proofs/inclusion", responses=responses(400, 422))
def inclusion_proof(
    audit: Audit,
    index: Annotated[int, Query(ge=0, le=MAX_INDEX)],
    tree_size: Annotated[int | None, Query(ge=1, le=MAX_INDEX)] = None,
) -> dict[str, Any]:
    """RFC 9162 audit path for one leaf: hashes only, public like consistency proofs."""
    try:
        return audit.inclusion_proof(index, tree_size).to_json()
    except InvalidProof as exc:
        raise Problem(400, "bad-proof-request", str(exc)) from None
    except AuditUnavailable:
        raise _unavailable() from None


@router.get("/proofs/consistency", responses=responses(400, 422))
def consistency_proof(
    audit: Audit,
    first: Annotated[int, Query(ge=0, le=MAX_INDEX)],
    second: Annotated[int | None, Query(ge=0, le=MAX_INDEX)] = None,
) -> dict[str, Any]:
    """RFC 9162 proof that the tree of size ``second`` extends the tree of size ``first``."""
    try:
        return audit.consistency_proof(first, second).to_json()
    except InvalidProof as exc:
        raise Problem(400, "bad-proof-request", str(exc)) from None
    except AuditUnavailable:
        raise _unavailable() from None


@router.get(
    "/entries",
    dependencies=[Depends(_audit_read("read_audit_entries"))],
    responses=_AUDITOR_ONLY,
)
def entries(
    audit: Audit,
    agency: str | None = None,
    official: Annotated[str | None, Query(pattern=f"^{OFFICIAL_ID_PATTERN}$")] = None,
    court_order: Annotated[str | None, Query(pattern=REFERENCE_PATTERN)] = None,
    purpose: str | None = None,
    action: str | None = None,
    outcome: Annotated[str | None, Query(pattern="^(allow|deny|error)$")] = None,
    security: Annotated[str | None, Query(pattern=SECURITY_FILTER)] = None,
    since: LogTime | None = None,
    until: LogTime | None = None,
    after: Annotated[int | None, Query(ge=-1, le=MAX_INDEX)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> dict[str, Any]:
    """Pseudonymised entries (subjects are keyed hashes), oldest first; page with ``after``.
    ``security`` narrows to the security events: ``any``, or one kind; ``official`` lists one
    agency official's calls across citizens (their pseudonymous id); ``court_order`` every
    entry made under one court order (auditors see them at once, embargo or not)."""
    if security is not None and security != "any":
        if action is not None and action != ACTION_PREFIX + security:
            raise Problem(422, "conflicting-filters", "action and security name different kinds")
        action = ACTION_PREFIX + security
    where = EntryFilter(
        agency=agency,
        official=official,
        court_order=court_order,
        purpose=purpose,
        action=action,
        action_prefix=ACTION_PREFIX if security == "any" else None,
        outcome=outcome,
        since_ns=_ns(since),
        until_ns=_ns(until),
    )
    try:
        rows = audit.entries(where, after=after, limit=limit)
    except AuditUnavailable:
        raise _unavailable() from None
    return {
        "entries": [_public_entry(r.to_json()) for r in rows],
        "next_after": rows[-1].index if len(rows) == limit else None,
    }


def _public_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry as auditors read it: ``time`` in RFC 3339, and ``time_ns`` as the integer the
    canonical entry holds (to rebuild it and check its leaf hash)."""
    ns = int(entry.pop("time_ns"))
    return {**entry, "time": rfc3339(ns), "time_ns": ns}


@router.get(
    "/stats", dependencies=[Depends(_audit_read("read_audit_stats"))], responses=_AUDITOR_ONLY
)
def stats(
    audit: Audit, since: LogTime | None = None, until: LogTime | None = None
) -> dict[str, Any]:
    """Counts by agency, purpose, action and outcome, and the current tree head."""
    try:
        return audit.stats(_ns(since), _ns(until))
    except AuditUnavailable:
        raise _unavailable() from None


@router.get(
    "/registry",
    dependencies=[Depends(_audit_read("read_registry"))],
    responses=_AUDITOR_ONLY,
)
def registry(request: Request) -> dict[str, Any]:
    """Every declaration of the processing registry, in force or not (Law 09.08 art. 12: the
    CNDP checks what was declared, for when), each with its CNDP declaration and validity."""
    services = services_of(request)
    now = time.time_ns()
    names = {c.client_id: c.name for c in services.oauth.registry.list()}
    return {
        "entries": [
            {**declaration(e, names).model_dump(), "in_force": e.in_force(now)}
            for e in services.registry
        ]
    }


@router.get(
    "/policy-revisions",
    dependencies=[Depends(_audit_read("read_policy_revisions"))],
    responses=_AUDITOR_ONLY,
)
def policy_revisions(
    request: Request,
    audit: Audit,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> dict[str, Any]:
    """The policy revisions (digest of the Rego rules and their data) the gateway enforced,
    newest first, as each first worker to load one put it on the record; and the one in force
    in this worker now."""
    try:
        found = audit.entries(EntryFilter(action=POLICY_REVISION), before=audit.size(), limit=limit)
    except AuditUnavailable:
        raise _unavailable() from None
    return {
        "in_force": services_of(request).policy.revision,
        "revisions": [
            {
                "revision": e.entry.policy_revision,
                "loaded_at": rfc3339(e.entry.time_ns),
                "loaded_by": e.entry.actor["id"],
                "audit_index": e.index,
            }
            for e in found
        ],
    }
