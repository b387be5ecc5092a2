"""The gateway as ``sijill serve`` runs it, plus two routes for the benchmark's baselines on the
same server, behind the same middleware:

- ``/bench/bare``: a synchronous route returning a constant JSON body of the query answer's
  shape (the framework's cost of one request and one thread-pool hop);
- ``/bench/writer/query``: the agency query's whole enforcement, as the alternative design to
  one hop: an asynchronous route that checks the caller and decides in a worker thread, hands
  the audit append to one dedicated audit-writer thread, then seals and reads the vault in a
  worker thread again (three hand-offs; the event loop still never waits on the database or
  an fsync);
- ``/bench/floor/query``: only the work no agency query can skip, in one thread-pool hop: the
  token check, the pseudonym read, one policy evaluation, one durable audit append, a sealed
  decision and the vault read and decrypt of the released fields. No consents, registry
  bound, rate limit, withheld reasons or problem documents.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from audit import AuditEntry
from gateway.admission import Admission, admit
from gateway.app import create_app
from gateway.authz import Enforcer
from gateway.questions import Resource, person_records
from gateway.responses import model_json
from gateway.routes.agency import PseudonymPath, QueryIn, _resolve, query_answer
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


def writer_judge(enforcer: Enforcer, pseudonym: str, body: QueryIn) -> tuple[Any, ...]:
    """The query's work up to its audit entry: caller admitted, pseudonym, consents, decision."""
    requested = sorted(set(body.fields))
    resource: Resource = {"kind": "person", "fields": requested}
    found = _resolve(enforcer.services, enforcer, pseudonym, resource, body.purpose)
    context = enforcer.context(found.idcs)
    now = time.time_ns()
    result, entry = enforcer._judge(
        resource, body.purpose, context.consents, context.objections, now, context.subject_tag
    )
    return requested, resource, found, result, entry


def factory() -> FastAPI:
    app = create_app()
    audit_writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-writer")

    @app.post("/bench/writer/query/{pseudonym}")
    async def writer(
        pseudonym: PseudonymPath,
        body: QueryIn,
        admission: Admission = Depends(admit("read_attributes", kinds=["agency"])),
    ) -> Any:
        requested, resource, found, result, entry = await admission.run(
            lambda enforcer: writer_judge(enforcer, pseudonym, body)
        )
        enforcer = admission.enforcer()  # admitted above: no work, no wait
        receipt = await asyncio.wrap_future(audit_writer.submit(enforcer._append, entry, must=True))

        def release() -> Any:
            recorded = (result, receipt, resource, body.purpose, person_records(found))
            outcome = enforcer._sealed([recorded])[0].require_allowed()
            return model_json(query_answer(outcome, requested, enforcer.reveal(outcome, requested)))

        return await run_in_threadpool(release)

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
