"""``GET /v1/me/export``: the whole right of access in one document (Law 09.08 art. 7), each
section equal to what the route serving it alone returns, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from audit import verify_receipt
from tests.gateway.conftest import World
from tests.gateway.test_agency_api import grant, pseudonym, query


def _get(world: World, who: str, path: str, **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {world.citizen_token(who)}"}
    response = world.api.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _whole_access_log(world: World, who: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        page = _get(world, who, "/v1/me/access-log", **params)
        entries.extend(page["entries"])
        if page["next_before"] is None:
            return entries
        params["before"] = page["next_before"]


def _without(section: dict[str, Any], *names: str) -> dict[str, Any]:
    """A section without the members that differ between two reads (the decision id)."""
    return {k: v for k, v in section.items() if k not in names}


def _uses_of_fatimas_data(world: World) -> list[str]:
    social = pseudonym(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    query(world, "cnss", social, ["given_name_lat", "phone"], "amo_tadamon_enrolment")
    query(world, "cnss", social, ["cnie"], "amo_tadamon_enrolment")
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    given = grant(
        world, "fatima", recipient="ms_sante", purpose="maternal_health_followup",
        fields=["given_name_lat"], expires_at=expires,
    )  # fmt: skip
    assert given.status_code == 201, given.text
    health = pseudonym(world, "ms_sante", "AB123456", "maternal_health_followup")
    query(world, "ms_sante", health, ["given_name_lat"], "maternal_health_followup")
    objected = world.api.post(
        "/v1/me/objections",
        json={"purpose": "scholarship_outreach", "reason": "personal_situation"},
        headers={"Authorization": f"Bearer {world.citizen_token('fatima')}"},
    )
    assert objected.status_code == 201, objected.text
    return [social, health]


def test_the_export_holds_every_section_and_each_equals_its_own_route(world: World) -> None:
    pseudonyms = _uses_of_fatimas_data(world)
    auth = {"Authorization": f"Bearer {world.citizen_token('fatima')}"}
    assert world.api.post("/v1/me/score/review", headers=auth).status_code == 201
    asked = world.api.post(
        "/v1/me/rectification-requests",
        json={"changes": {"address": "12 Derb Sidi Ahmed, Fès"}, "statement": "I moved."},
        headers=auth,
    )
    assert asked.status_code == 201, asked.text
    world.services.audit.issue_checkpoint()
    # The individual routes first: the export's own reads are the citizen's and stay out of
    # the access log, so both see the same uses.
    data = _get(world, "fatima", "/v1/me/data")
    consents = _get(world, "fatima", "/v1/me/consents")["consents"]
    objections = _get(world, "fatima", "/v1/me/objections")["objections"]
    score = _get(world, "fatima", "/v1/me/score", lang="ar")
    household = _get(world, "fatima", "/v1/me/household")
    history = _get(world, "fatima", "/v1/me/household/history")
    reviews = _get(world, "fatima", "/v1/me/score/reviews")["items"]
    rectifications = _get(world, "fatima", "/v1/me/rectification-requests")["items"]
    log = _whole_access_log(world, "fatima")
    token = world.citizen_token("fatima")
    chosen = world.api.put(
        "/v1/me/notifications",
        json={"channel": "sms", "address": "+212611223344", "scope": "denials"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert chosen.status_code == 200, chosen.text
    notifications = _get(world, "fatima", "/v1/me/notifications")

    export = _get(world, "fatima", "/v1/me/export", lang="ar")

    assert export["format"] == "sijill-personal-data-export/1"
    assert export["idcs"] == world.people["fatima"] == data["idcs"]
    assert export["person"] == data["person"]
    assert export["status"] == data["status"]
    assert export["consents"] == consents and len(consents) == 1
    assert export["objections"] == objections
    assert {o["reason"] for o in objections} == {"personal_situation", "automated_decision"}
    assert export["reviews"] == reviews and len(reviews) == 1
    assert export["rectification_requests"] == rectifications and len(rectifications) == 1
    assert "12 Derb Sidi Ahmed" not in json.dumps(rectifications)  # proposed values stay in
    for section, alone in (("household", household), ("household_history", history)):
        assert export[section]["available"] is True
        assert _without(export[section], "available", "decision_id") == _without(
            alone, "decision_id"
        )
    assert household["members"] and history["changes"]
    assert export["notifications"] == notifications and notifications["scope"] == "denials"
    assert export["score"]["available"] is True
    assert _without(export["score"], "available", "decision_id") == _without(score, "decision_id")
    exported_log = [
        {k: v for k, v in e.items() if k != "receipt_document"} for e in export["access_log"]
    ]
    assert exported_log == log
    assert {e["agency"] for e in log if e["actor_kind"] == "agency"} == {"cnss", "ms_sante"}
    for entry in export["access_log"]:
        assert entry["receipt_document"] is not None
        verify_receipt(entry["receipt_document"])
        assert entry["receipt_document"]["leaf_index"] == entry["index"]
    held = {h["sector"]: h for h in export["pseudonyms"]}
    assert set(held) == {"social", "health"}
    assert "cnss" in held["social"]["agencies"] and "ms_sante" in held["health"]["agencies"]
    # The sectors are named, never the pseudonyms themselves (they would link requests).
    text = json.dumps(export)
    assert all(p.startswith(("social.", "health.")) for p in pseudonyms)
    assert not any(p in text or p.split(".")[-1] in text for p in pseudonyms)


def test_someone_outside_the_rsu_gets_an_export_that_says_why_there_is_no_score(
    world: World,
) -> None:
    export = _get(world, "youssef", "/v1/me/export")
    assert export["score"] == {"available": False, "reason": "no-household"}
    assert export["household"] == {"available": False, "reason": "no-household"}
    assert export["reviews"] == [] and export["rectification_requests"] == []
    assert export["person"]["given_name_lat"] == "Youssef"
    assert export["access_log"] == [] and export["pseudonyms"] == []
    assert export["notifications"] is None


def test_the_export_is_on_the_record_and_only_the_citizen_may_take_it(world: World) -> None:
    before = world.audit_size()
    _get(world, "fatima", "/v1/me/export")
    actions = [
        logged.entry.action
        for logged in world.services.audit.entries(before=world.audit_size(), limit=10)
        if logged.index >= before
    ]
    assert actions and set(actions) == {"export_own_data"}
    refused = world.call("cnss", "GET", "/v1/me/export")
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
