"""Fail closed (DESIGN.md): when the audit store cannot record the request, an agency's data
request gets 503 and not one field is released."""

from __future__ import annotations

from audit import AuditLog
from gateway.db import make_engine
from tests.gateway.conftest import World


def test_an_agency_query_gets_503_and_no_data_when_the_audit_store_is_down(
    world: World,
) -> None:
    lookup = world.call(
        "cnss",
        "POST",
        "/v1/agency/lookup",
        json={"cnie": "AB123456", "purpose": "amo_tadamon_enrolment"},
    )
    assert lookup.status_code == 200, lookup.text
    pseudonym = lookup.json()["pseudonym"]
    live: AuditLog = world.services.audit
    size = live.size()
    token = world.token("cnss")  # minted while everything is up
    # The audit database becomes unreachable: a store on a port nothing listens on (PostgreSQL)
    # or in a directory that does not exist (SQLite); every append now really fails.
    if live.storage.engine.dialect.name == "sqlite":  # type: ignore[attr-defined]
        dead = make_engine("sqlite:////nonexistent-dir/sijill/audit.db")
    else:
        url = live.storage.engine.url.set(port=1)  # type: ignore[attr-defined]
        dead = make_engine(url.render_as_string(hide_password=False))
    world.services.audit = AuditLog.for_engine(dead, live.signer, live.origin)
    try:
        response = world.api.post(
            f"/v1/agency/persons/{pseudonym}/query",
            json={"fields": ["given_name_lat", "birth_date"], "purpose": "amo_tadamon_enrolment"},
            headers={"Authorization": f"Bearer {token}"},
        )
    finally:
        world.services.audit.close()
        world.services.audit = live
        dead.dispose()
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "Fatima" not in response.text and "1987" not in response.text
    assert "released" not in response.json()
    assert live.size() == size  # and nothing was recorded as released either
