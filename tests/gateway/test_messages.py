"""Messages that say what is wrong and what to do, without revealing more than before."""

from __future__ import annotations

from tests.gateway.conftest import World
from tests.gateway.test_agency_api import pseudonym


def test_a_purpose_the_client_is_not_registered_for_is_named_before_any_lookup(
    world: World,
) -> None:
    before = world.audit_size()
    for cnie in ("AB123456", "ZZ999999"):  # a registered person and nobody: the same answer
        r = world.call(
            "cnss",
            "POST",
            "/v1/agency/lookup",
            json={"cnie": cnie, "purpose": "scholarship_outreach"},
        )
        assert r.status_code == 403, r.text
        body = r.json()
        assert body["type"].endswith("/purpose-not-registered")
        assert "not registered for the purpose 'scholarship_outreach'" in body["detail"]
        assert "amo_tadamon_enrolment" in body["detail"]  # what it is registered for
        assert cnie not in r.text
    assert world.audit_size() == before  # nothing about a person was looked up


def test_a_query_for_only_unknown_fields_names_them(world: World) -> None:
    p = pseudonym(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    r = world.call(
        "cnss",
        "POST",
        f"/v1/agency/persons/{p}/query",
        json={"fields": ["shoe_size", "favourite_colour"], "purpose": "amo_tadamon_enrolment"},
    )
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["type"].endswith("/unknown-field")
    assert body["fields"] == ["favourite_colour", "shoe_size"]


def test_malformed_json_is_called_malformed_json(world: World) -> None:
    r = world.api.post(
        "/v1/agency/lookup",
        content=b'{"cnie": "AB123456", "purpose": }',
        headers={
            "Authorization": f"Bearer {world.token('cnss')}",
            "Content-Type": "application/json",
        },
    )
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["type"].endswith("/malformed-json")
    assert "not valid JSON (at character" in body["detail"]
    assert "AB123456" not in r.text
    assert body["errors"] == [{"field": "body", "error": "json_invalid", "message": "invalid JSON"}]
