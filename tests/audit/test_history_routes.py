"""Auditors read the processing registry and the policy revisions in force over time through
the API (the actions ``read_registry`` and ``read_policy_revisions``), each read on the record."""

from __future__ import annotations

from datetime import datetime

from policies.registry import ProcessingRegistry
from tests.gateway.conftest import World


def test_an_auditor_reads_every_declaration_in_force_or_not(world: World) -> None:
    before = world.audit_size()
    r = world.call("cndp", "GET", "/v1/audit/registry")
    assert r.status_code == 200, r.text
    entries = r.json()["entries"]
    registry = ProcessingRegistry.load()
    assert {e["entry"] for e in entries} == {e.id for e in registry.entries}
    assert any(not e["in_force"] for e in entries)  # the demo registry holds an expired one
    assert all(e["cndp_declaration"] for e in entries)
    assert world.audit_size() == before + 1  # the read itself is on the record
    newest = world.services.audit.entries(before=world.audit_size(), limit=1)[0].entry
    assert (newest.action, newest.actor["id"], newest.outcome) == ("read_registry", "cndp", "allow")


def test_an_auditor_reads_the_policy_revisions_the_gateway_enforced(world: World) -> None:
    r = world.call("cndp", "GET", "/v1/audit/policy-revisions")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["in_force"] == world.services.policy.revision
    revisions = body["revisions"]
    assert revisions and revisions[0]["revision"] == body["in_force"]
    assert revisions[0]["loaded_by"] == "gateway"
    assert datetime.fromisoformat(revisions[0]["loaded_at"]).tzinfo is not None
    logged = world.services.audit.entry(revisions[0]["audit_index"])
    assert logged is not None and logged.entry.action == "policy_revision"


def test_an_agency_reads_neither(world: World) -> None:
    for path in ("/v1/audit/registry", "/v1/audit/policy-revisions"):
        assert world.api.get(path).status_code == 401
        assert world.call("cnss", "GET", path).status_code == 403
