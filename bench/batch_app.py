"""The gateway as ``sijill serve`` runs it, plus the batch benchmark's floor: a route that does
for each item of a batch only the work no batch can skip (its share of the batch's one
pseudonym read, one policy evaluation, its audit entry in the batch's one durable append, its
share of a slice's sealing signature and vault read, and the decrypt of the released fields),
after one token check. It answers NDJSON lines of the released values, as the batch route
does, without consents, registry bound, withheld reasons or problem documents."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from fastapi import Depends, FastAPI
from starlette.responses import StreamingResponse

from audit import AuditEntry
from gateway.app import create_app
from gateway.auth import Principal, require_principal
from gateway.authz import policy_subject
from gateway.routes.agency_batch import BatchQueryIn
from gateway.services import Services, get_services
from rsu import resolve_many

principal_dep = require_principal(kinds=("agency",), scopes=("agency:query",))


def factory() -> FastAPI:
    app = create_app()

    @app.post("/bench/floor/batch")
    def floor(
        body: BatchQueryIn,
        principal: Principal = Depends(principal_dep),
        services: Services = Depends(get_services),
    ) -> StreamingResponse:
        subject = policy_subject(principal)
        asked: list[tuple[str, list[str], Any]] = []
        entries = []
        resolved = resolve_many(
            services.engines["main"], principal.sector, [i.pseudonym for i in body.items]
        )
        for item in body.items:
            found = resolved[item.pseudonym]
            assert found is not None  # the benchmark asks about its own population only
            now = time.time_ns()
            result = services.policy.decide(
                {
                    "subject": subject,
                    "action": "read_attributes",
                    "resource": {"kind": "person", "fields": item.fields},
                    "purpose": body.purpose,
                    "consents": [],
                    "objections": [],
                    "time_ns": now,
                }
            )
            entries.append(
                AuditEntry(
                    time_ns=now,
                    actor={"kind": "agency", "id": principal.client_id, "sector": None},
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
            asked.append((found.person, item.fields, result))
        receipts = services.audit.append_many(entries)
        drafts = [
            services.decision_issuer.draft(
                result,
                subject=person,
                action="read_attributes",
                purpose=body.purpose,
                audit_index=receipt.index,
                requested=fields,
            )
            for (person, fields, result), receipt in zip(asked, receipts, strict=True)
        ]
        # Sealed a slice of 100 under one signature, as the gateway's batch routes do.
        signed = [
            decision
            for start in range(0, len(drafts), 100)
            for decision in services.decision_issuer.seal_many(drafts[start : start + 100])
        ]
        sealed = [
            (person, sorted(set(fields) & set(result.fields)), decision)
            for (person, fields, result), decision in zip(asked, signed, strict=True)
        ]

        def lines() -> Iterator[str]:
            # A slice's lines in one chunk: one thread-pool hop and one write a slice, as the
            # batch routes stream.
            for start in range(0, len(sealed), 100):
                yield "".join(
                    json.dumps(values, default=str) + "\n"
                    for values in services.vault.reveal_many(sealed[start : start + 100])
                )

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    return app
