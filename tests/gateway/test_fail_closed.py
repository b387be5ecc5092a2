"""No decision, no data: with the policy engine stopped, an agency request is denied with 503,
nothing is released, and the failure itself is on the audit record. With the whole database
down, every kind of route answers 503 problem+json with Retry-After, and serves again by
itself once the database is back."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from audit import EntryFilter
from gateway import db
from gateway.app import create_app
from gateway.settings import load_settings
from policies import OpaEngine
from tests.gateway.conftest import FATIMA, World, build_world
from tests.gateway.tcpproxy import TcpProxy


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


# -- the whole database down ----------------------------------------------------------------

NEWCOMER = {
    **FATIMA,
    "given_name_lat": "Salma",
    "given_name_ar": "سلمى",
    "cnie": "EE112233",
    "birth_date": "1995-06-01",
    "phone": "+212611111111",
}


@pytest.fixture
def proxied(tmp_path, pg_schema_url: str) -> Iterator[tuple[World, TcpProxy]]:  # type: ignore[no-untyped-def]
    """A gateway whose every database URL goes through a TCP proxy in front of PostgreSQL."""
    db.upgrade(dict.fromkeys(db.STORES, pg_schema_url))
    direct = make_url(pg_schema_url)
    proxy = TcpProxy((direct.host or "127.0.0.1", direct.port or 5432)).start()
    via_proxy = direct.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    settings = load_settings(
        data_dir=tmp_path / "data", database_url=via_proxy, host="127.0.0.1", port=8000
    )
    settings.prepare_data_dir()
    app = create_app(settings)
    try:
        yield build_world(app, settings), proxy
    finally:
        proxy.stop()
        app.state.services.close()


def _every_route_kind(world: World, tokens: dict[str, str], pseudonym: str) -> dict[str, Any]:
    """One request of each kind of route: agency (lookup, query), citizen, auditor, office
    (enrolment) and the token endpoint."""

    def call(kind: str, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {tokens[kind]}"}
        return world.api.request(method, path, headers=headers, **kwargs)

    purpose = "amo_tadamon_enrolment"
    return {
        "lookup": call(
            "cnss", "POST", "/v1/agency/lookup", json={"cnie": "AB123456", "purpose": purpose}
        ),
        "query": call(
            "cnss",
            "POST",
            f"/v1/agency/persons/{pseudonym}/query",
            json={"fields": ["given_name_lat"], "purpose": purpose},
        ),
        "me": call("citizen", "GET", "/v1/me/access-log"),
        "me_consents": call("citizen", "GET", "/v1/me/consents"),
        "audit": call("cndp", "GET", "/v1/audit/entries"),
        "enrol": call("office-fes", "POST", "/v1/rnp/persons", json=NEWCOMER),
        "token": world.token_response("anam"),
    }


@pytest.mark.postgres
def test_the_whole_database_down_is_503_on_every_route_kind_and_service_resumes_by_itself(
    proxied: tuple[World, TcpProxy],
) -> None:
    world, proxy = proxied
    tokens = {c: world.token(c) for c in ("cnss", "cndp", "office-fes")}
    tokens["citizen"] = world.citizen_token("fatima")
    found = world.call(
        "cnss",
        "POST",
        "/v1/agency/lookup",
        json={"cnie": "AB123456", "purpose": "amo_tadamon_enrolment"},
    )
    pseudonym = found.json()["pseudonym"]
    assert world.api.get("/readyz").status_code == 200

    proxy.stop()
    down = _every_route_kind(world, tokens, pseudonym)
    for name, response in down.items():
        assert response.status_code == 503, (name, response.status_code, response.text)
        assert response.headers["content-type"] == "application/problem+json", name
        assert int(response.headers["retry-after"]) > 0, name
        assert response.json()["type"].endswith("-unavailable"), name
        for value in ("Fatima", "Salma", "AB123456", "EE112233", "1987"):
            assert value not in response.text, name
    ready = world.api.get("/readyz")
    assert ready.status_code == 503
    assert "database.main" in ready.json()["unavailable"]

    proxy.start()  # the database is back; the gateway is not restarted
    assert world.api.get("/readyz").status_code == 200
    up = _every_route_kind(world, tokens, pseudonym)
    assert {name: r.status_code for name, r in up.items()} == {
        "lookup": 200,
        "query": 200,
        "me": 200,
        "me_consents": 200,
        "audit": 200,
        "enrol": 201,
        "token": 200,
    }
