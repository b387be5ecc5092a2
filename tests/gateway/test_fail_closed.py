"""No decision, no data: with the policy engine stopped, an agency request is denied with 503,
nothing is released, and the failure itself is on the audit record."""

from __future__ import annotations

import socket

from audit import EntryFilter
from policies import OpaEngine
from tests.gateway.conftest import World


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends


def test_policy_engine_stopped_means_503_nothing_released_and_an_error_entry(world: World) -> None:
    token = world.token("cnss")
    headers = {"Authorization": f"Bearer {token}"}
    found = world.api.post(
        "/v1/agency/lookup",
        headers=headers,
        json={"cnie": "AB123456", "purpose": "amo_tadamon_enrolment"},
    )
    pseudonym = found.json()["pseudonym"]
    world.services.policy = OpaEngine(f"http://127.0.0.1:{closed_port()}", timeout=1.0)
    before = world.audit_size()
    response = world.api.post(
        f"/v1/agency/persons/{pseudonym}/query",
        headers=headers,
        json={"fields": ["given_name_lat"], "purpose": "amo_tadamon_enrolment"},
    )
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"]
    assert "Fatima" not in response.text
    assert response.json()["type"].endswith("/policy-unavailable")
    assert world.audit_size() == before + 1
    [entry] = world.services.audit.entries(EntryFilter(outcome="error"), after=before - 1)
    assert entry.entry.reasons == ["policy_unavailable"]
    assert entry.entry.fields == ["given_name_lat"]
