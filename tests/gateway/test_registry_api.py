"""``GET /v1/registry/purposes``: the processing registry, public, agencies by name."""

from __future__ import annotations

import time
from datetime import datetime

from fastapi.testclient import TestClient

from policies.registry import ProcessingRegistry
from tests.gateway.conftest import World


def test_the_registry_is_public_and_names_each_declaration(client: TestClient) -> None:
    r = client.get("/v1/registry/purposes")
    assert r.status_code == 200, r.text
    listed = r.json()["purposes"]
    registry = ProcessingRegistry.load()
    now = time.time_ns()
    assert {p["entry"] for p in listed} == {e.id for e in registry.entries if e.in_force(now)}
    every = client.get("/v1/registry/purposes", params={"in_force": "false"}).json()["purposes"]
    assert {p["entry"] for p in every} == {e.id for e in registry.entries}
    assert len(every) > len(listed)  # the demo registry holds a declaration no longer in force
    for item in listed:
        entry = registry.get(item["entry"])
        assert entry is not None
        assert item["fields"] == list(entry.fields)
        assert item["cndp_declaration"] == entry.cndp_declaration
        assert item["retention"] == entry.retention
        assert item["valid_from"].endswith("Z")
        assert datetime.fromisoformat(item["valid_from"]).timestamp() * 1e9 == entry.valid_from


def test_a_citizen_sees_the_purposes_that_accept_consent_with_agency_names(world: World) -> None:
    r = world.api.get("/v1/registry/purposes", params={"consent": "true"})
    assert r.status_code == 200
    listed = r.json()["purposes"]
    assert listed and all(p["consent"] and p["legal_basis"]["type"] == "consent" for p in listed)
    assert all(p["consent_max_days"] > 0 for p in listed)
    agencies = {a["id"]: a["name"] for p in listed for a in p["agencies"]}
    registered = {c.client_id: c.name for c in world.oauth.registry.list()}
    for agency, name in agencies.items():
        assert name == registered.get(agency)  # its registered name, or none if not a client
    statutory = world.api.get("/v1/registry/purposes", params={"consent": "false"}).json()
    assert all(not p["consent"] for p in statutory["purposes"])
