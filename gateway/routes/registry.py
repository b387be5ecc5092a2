"""The processing registry, public (DESIGN.md "HTTP surface"): every purpose Sijill may process
personal data for, which agencies, which fields, on which legal basis, for how long, under
which CNDP declaration. It is public information (Law 09.08 art. 12 and 15: declarations are
published, and a person is told the purpose before consenting), so no token is needed; a
citizen's consent screen lists from it the purposes that accept consent."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from gateway.problems import responses
from gateway.services import Services, get_services
from gateway.timefmt import rfc3339
from policies.registry import RegistryEntry

router = APIRouter(prefix="/v1/registry", tags=["registry"], responses=responses(422, 503))


class Agency(BaseModel):
    id: str
    name: str | None = Field(description="The agency's registered name, if it is a client")


class Purpose(BaseModel):
    entry: str = Field(description="The registry entry (one CNDP declaration)")
    purpose: str
    description: str
    sector: str
    agencies: list[Agency]
    fields: list[str]
    legal_basis: dict[str, str]
    consent: bool = Field(description="Whether the purpose rests on the person's consent")
    consent_max_days: int | None
    retention: str = Field(description="How long the data is kept (ISO 8601 duration)")
    cndp_declaration: str
    valid_from: str = Field(description="RFC 3339, UTC")
    valid_until: str | None = Field(description="RFC 3339, UTC; none: in force until changed")
    requires_official: bool = Field(
        description="Whether each call must name the agency's acting official and case "
        "(token exchange, RFC 8693)"
    )


class Purposes(BaseModel):
    purposes: list[Purpose]


def declaration(entry: RegistryEntry, names: dict[str, str]) -> Purpose:
    """One registry entry as the API shows it (agencies by their registered names)."""
    consent = entry.basis_type == "consent"
    return Purpose(
        entry=entry.id,
        purpose=entry.purpose,
        description=entry.description,
        sector=entry.sector,
        agencies=[Agency(id=a, name=names.get(a)) for a in entry.agencies],
        fields=list(entry.fields),
        legal_basis=entry.legal_basis,
        consent=consent,
        consent_max_days=entry.consent_max_days if consent else None,
        retention=entry.retention,
        cndp_declaration=entry.cndp_declaration,
        valid_from=rfc3339(entry.valid_from),
        valid_until=rfc3339(entry.valid_until) if entry.valid_until is not None else None,
        requires_official=entry.requires_official,
    )


@router.get("/purposes", response_model=Purposes)
def purposes(
    services: Annotated[Services, Depends(get_services)],
    consent: Annotated[
        bool | None, Query(description="Only purposes that rest on consent (true) or not")
    ] = None,
    in_force: Annotated[bool, Query(description="Only the declarations in force now")] = True,
) -> dict[str, Any]:
    """The processing registry: purposes, agencies by name, fields, legal basis, retention and
    CNDP declaration."""
    now = time.time_ns()
    names = {c.client_id: c.name for c in services.oauth.registry.list()}
    chosen = [
        e
        for e in services.registry
        if (not in_force or e.in_force(now))
        and (consent is None or (e.basis_type == "consent") == consent)
    ]
    return {"purposes": [declaration(e, names) for e in chosen]}
