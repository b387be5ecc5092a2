"""The gateway as ``sijill serve`` runs it, plus two routes for the benchmark's baselines on the
same server, behind the same middleware:

- ``/bench/bare``: a synchronous route returning a constant JSON body of the query answer's
  shape (the framework's cost of one request and one thread-pool hop);
- ``/bench/floor/query``: only the work no agency query can skip, in one thread-pool hop: the
  token check, the pseudonym read, one policy evaluation, one durable audit append, a sealed
  decision and the vault read and decrypt of the released fields. No consents, registry
  bound, rate limit, withheld reasons or problem documents.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from audit import AuditEntry
from gateway.app import create_app
from gateway.routes.agency import PseudonymPath, QueryIn
from gateway.services import Services, services_of
from identity.oauth import AccessToken
from rsu import resolve_subjects

BARE_BODY = {
    "released": {"given_name_lat": "Fatima", "birth_date": "1987"},
    "withheld": [{"field": "phone", "reason": "not_declared_for_purpose"}],
    "decision_id": "00000000-0000-0000-0000-000000000000",
    "legal_basis": {"type": "law", "ref": "Law 65.00"},
}


def floor_query(services: Services, authorization: str, pseudonym: str, body: QueryIn) -> Any:
    token: AccessToken = services.oauth.verifier.verify(authorization.partition(" ")[2])
    client = services.oauth.registry.get(token.client_id)
    assert client is not None
    found = resolve_subjects(services.engines["main"], client.sector, pseudonym)
    now = time.time_ns()
    subject = {
        "kind": "agency",
        "client_id": client.client_id,
        "sector": client.sector,
        "scopes": sorted(token.scopes),
        "agency": client.client_id,
        "purposes": sorted(client.purposes),
    }
    result = services.policy.decide(
        {
            "subject": subject,
            "action": "read_attributes",
            "resource": {"kind": "person", "fields": body.fields},
            "purpose": body.purpose,
            "consents": [],
            "objections": [],
            "time_ns": now,
        }
    )
    receipt = services.audit.append(
        AuditEntry(
            time_ns=now,
            actor={"kind": "agency", "id": client.client_id, "sector": client.sector},
            action="read_attributes",
            subject=None,
            fields=sorted(result.fields),
            purpose=body.purpose,
            legal_basis=None,
            decision_id=result.decision_id,
            policy_revision=result.policy_revision,
            outcome="allow" if result.allow else "deny",
            reasons=list(result.reasons),
        )
    )
    released = sorted(set(body.fields) & set(result.fields))
    decision = services.decision_issuer.seal(
        result,
        subject=found.person,
        action="read_attributes",
        purpose=body.purpose,
        audit_index=receipt.index,
        requested=body.fields,
    )
    values = services.vault.reveal_many([(found.person, released, decision)])[0]
    return {"released": values, "decision_id": result.decision_id}


def factory() -> FastAPI:
    app = create_app()

    @app.post("/bench/bare")
    def bare() -> dict[str, object]:
        return BARE_BODY

    @app.post("/bench/floor/query/{pseudonym}")
    async def floor(pseudonym: PseudonymPath, body: QueryIn, request: Request) -> JSONResponse:
        services = services_of(request)
        authorization = request.headers.get("authorization", "")
        answer = await run_in_threadpool(floor_query, services, authorization, pseudonym, body)
        return JSONResponse(answer)

    return app
