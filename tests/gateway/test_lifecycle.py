"""A policy revision is put on the audit record once, when a worker first enforces it."""

from __future__ import annotations

from fastapi.testclient import TestClient

from audit import EntryFilter
from gateway.lifecycle import record_policy_revision


def test_starting_the_app_records_the_policy_revision_once(app) -> None:  # type: ignore[no-untyped-def]
    services = app.state.services
    with TestClient(app):
        pass
    size = services.audit.size()
    found = services.audit.entries(EntryFilter(action="policy_revision"), before=size, limit=10)
    assert [e.entry.policy_revision for e in found] == [services.policy.revision]
    assert record_policy_revision(services) is False  # same revision: nothing new
    assert services.audit.size() == size
