"""Public facts the pages put into words: agencies by their registered names, the purposes
that accept consent, the RSU programs and their thresholds. None of it is personal data."""

from __future__ import annotations

import json
import time
from functools import cache
from typing import Any

from starlette.requests import Request

from gateway.services import services_of
from policies.registry import DATA_DIR


def agency_names(request: Request) -> dict[str, str]:
    """client id -> registered name, for every client (agencies are shown by name)."""
    return {c.client_id: c.name for c in services_of(request).oauth.registry.list()}


def consent_purposes(request: Request, *, consent_only: bool = True) -> list[dict[str, Any]]:
    """One choice per (purpose, agency) of the declarations in force that rest on consent."""
    now = time.time_ns()
    names = agency_names(request)
    out = []
    for entry in services_of(request).registry:
        if not entry.in_force(now) or (consent_only and entry.basis_type != "consent"):
            continue
        for agency in entry.agencies:
            out.append(
                {
                    "key": f"{entry.purpose}:{agency}",
                    "purpose": entry.purpose,
                    "agency": agency,
                    "agency_name": names.get(agency, agency),
                    "fields": list(entry.fields),
                    "retention": entry.retention,
                    "description": entry.description,
                    "max_days": entry.consent_max_days,
                    "declaration": entry.cndp_declaration,
                }
            )
    return out


def declared_agencies(request: Request) -> list[str]:
    """Every agency the processing registry names, in order."""
    return sorted({a for entry in services_of(request).registry for a in entry.agencies})


@cache
def programs() -> list[dict[str, Any]]:
    """The RSU programs: name key, threshold and comparison (policies/data/programs.json)."""
    doc = json.loads((DATA_DIR / "programs.json").read_text(encoding="utf-8"))
    return [
        {"id": pid, "threshold": float(p["threshold"]), "comparison": p["comparison"]}
        for pid, p in doc["programs"].items()
    ]
