"""Rectification through HTTP (Law 09.08 art. 8; docs/privacy.md "Rectification"): a
citizen's request reaches the office's queue; the officer reads the proposed values, then
accepts (applied by the same code as an office's PATCH, the new version linked to the request)
or refuses with a reason; the citizen sees the status. The proposed values and the statement
never reach the main store. Each test runs on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData, select

from tests.gateway.conftest import World

PROBLEM = "application/problem+json"
NEW_NAME = "Benali-Idrissi"
STATEMENT = "My family name took my mother's name too in the 2019 civil-status record."


def _officer(world: World, officer: str = "officer-karim") -> dict[str, str]:
    """An officer signed in through the office's pages (password + TOTP)."""
    if "office-desk" not in world.clients:
        world.register("office-desk", "office", "registry", "rsu:review rnp:rectify")
    token, _ = world.oauth.issuer.access_token(
        client_id="office-desk", scope="rnp:rectify", subject=officer, subject_kind="officer"
    )
    return {"Authorization": f"Bearer {token}"}


def _citizen(world: World, name: str = "fatima") -> dict[str, str]:
    return {"Authorization": f"Bearer {world.citizen_token(name)}"}


def _ask(world: World, changes: dict[str, Any], statement: str = STATEMENT) -> dict[str, Any]:
    response = world.api.post(
        "/v1/me/rectification-requests",
        headers=_citizen(world),
        json={"changes": changes, "statement": statement},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def _mine(world: World, name: str = "fatima") -> dict[str, dict[str, Any]]:
    response = world.api.get("/v1/me/rectification-requests", headers=_citizen(world, name))
    assert response.status_code == 200, response.text
    return {r["id"]: r for r in response.json()["items"]}


def _main_store_text(world: World) -> str:
    """Every row of every table of the main store, as text."""
    engine = world.services.engines["main"]
    meta = MetaData()
    meta.reflect(engine)
    out = []
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            # One database may hold the three stores: the vault's and the log's are not it.
            if table.name.startswith(("vault_", "audit_")):
                continue
            out += [repr(tuple(row)) for row in conn.execute(select(table))]
    return "\n".join(out)


def test_accepted_request_changes_the_record_through_the_register_and_links_the_version(
    world: World,
) -> None:
    asked = _ask(world, {"family_name_lat": NEW_NAME})
    assert asked["status"] == "pending" and asked["fields"] == ["family_name_lat"]
    assert asked["due_at"] > asked["created_at"]
    # Proposed values and the statement are personal data: in the vault, not the main store.
    stored = _main_store_text(world)
    assert NEW_NAME not in stored and "civil-status" not in stored

    queue = world.api.get("/v1/rnp/rectification-requests", headers=_officer(world))
    assert queue.status_code == 200, queue.text
    (item,) = queue.json()["items"]
    assert item["id"] == asked["id"] and NEW_NAME not in queue.text
    opened = world.api.get(f"/v1/rnp/rectification-requests/{asked['id']}", headers=_officer(world))
    assert opened.status_code == 200, opened.text
    assert opened.json()["proposed"] == {"family_name_lat": NEW_NAME}
    assert opened.json()["statement"] == STATEMENT
    assert opened.json()["idcs"] == world.people["fatima"]

    before = world.audit_size()
    accepted = world.api.post(
        f"/v1/rnp/rectification-requests/{asked['id']}/accept", headers=_officer(world)
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    after = world.audit_size()
    data = world.api.get("/v1/me/data", headers=_citizen(world)).json()
    assert data["person"]["family_name_lat"] == NEW_NAME
    assert data["person"]["given_name_lat"] == "Fatima"  # the other fields kept
    # The request names the register's new version; the previous one is kept (retention).
    kept = [v for v, _ in world.services.register.previous_versions(world.people["fatima"])]
    assert accepted.json()["version"] == max(kept) + 1
    entries = [world.services.audit.entry(i) for i in range(before, after)]
    assert {e.entry.action for e in entries if e} == {"decide_rectification_request"}
    assert {e.entry.actor["id"] for e in entries if e} == {"office-desk/officer-karim"}
    mine = _mine(world)[asked["id"]]
    assert mine["status"] == "accepted" and mine["version"] == accepted.json()["version"]
    again = world.api.post(
        f"/v1/rnp/rectification-requests/{asked['id']}/accept", headers=_officer(world)
    )
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM


def test_refused_request_leaves_the_record_and_the_citizen_reads_the_reason(
    world: World,
) -> None:
    asked = _ask(world, {"birth_place": "Meknès"}, "I was born in Meknès, not Fès.")
    reason = "The birth certificate presented names Fès."
    refused = world.api.post(
        f"/v1/rnp/rectification-requests/{asked['id']}/refuse",
        headers=_officer(world),
        json={"reason": reason},
    )
    assert refused.status_code == 200, refused.text
    assert refused.json()["status"] == "refused"
    assert reason not in _main_store_text(world)
    data = world.api.get("/v1/me/data", headers=_citizen(world)).json()
    assert data["person"]["birth_place"] == "Fès"
    mine = _mine(world)[asked["id"]]
    assert mine["status"] == "refused" and mine["reason"] == reason
    assert mine["version"] is None
    # Youssef sees none of Fatima's requests.
    assert _mine(world, "youssef") == {}
    pending = world.api.get("/v1/rnp/rectification-requests", headers=_officer(world)).json()
    assert pending["items"] == []
    decided = world.api.get(
        "/v1/rnp/rectification-requests", params={"status": "refused"}, headers=_officer(world)
    ).json()
    assert [r["id"] for r in decided["items"]] == [asked["id"]]


def test_a_proposal_that_would_duplicate_a_person_fails_at_acceptance_and_stays_pending(
    world: World,
) -> None:
    # Youssef's CNIE number: the register keeps one IDCS per person (Law 72.18 art. 8).
    asked = _ask(world, {"cnie": "CD654321"})
    accepted = world.api.post(
        f"/v1/rnp/rectification-requests/{asked['id']}/accept", headers=_officer(world)
    )
    assert accepted.status_code == 409 and accepted.headers["content-type"] == PROBLEM
    assert accepted.json()["type"].endswith("duplicate-person")
    assert "CD654321" not in accepted.text and world.people["youssef"] not in accepted.text
    assert _mine(world)[asked["id"]]["status"] == "pending"
    data = world.api.get("/v1/me/data", headers=_citizen(world)).json()
    assert data["person"]["cnie"] == "AB123456"


def test_bad_requests_store_nothing(world: World) -> None:
    headers = _citizen(world)
    cases = [
        {"changes": {}, "statement": STATEMENT},
        {"changes": {"family_name_lat": NEW_NAME}, "statement": ""},
        {"changes": {"idcs": "2345678901"}, "statement": STATEMENT},
        {"changes": {"sex": "X"}, "statement": STATEMENT},
        {"changes": {"address": "x" * 400}, "statement": STATEMENT},
        {"changes": {"birth_date": "2087-13-45"}, "statement": STATEMENT},
    ]
    for body in cases:
        response = world.api.post("/v1/me/rectification-requests", headers=headers, json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == PROBLEM
    assert _mine(world) == {}
    assert NEW_NAME not in _main_store_text(world)


def test_the_queue_needs_a_named_officer_and_citizens_cannot_decide(world: World) -> None:
    asked = _ask(world, {"phone": "+212600000000"})
    machine = world.call("office-fes", "GET", "/v1/rnp/rectification-requests")
    assert machine.status_code == 403
    citizen = world.api.post(
        f"/v1/rnp/rectification-requests/{asked['id']}/accept", headers=_citizen(world)
    )
    assert citizen.status_code == 403
    assert _mine(world)[asked["id"]]["status"] == "pending"


def test_an_office_patch_still_rectifies_through_the_same_path(world: World) -> None:
    idcs = world.people["youssef"]
    response = world.call(
        "office-fes", "PATCH", f"/v1/rnp/persons/{idcs}", json={"address": "9 Rue Fès, Rabat"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2 and response.json()["status"] == "active"
    data = world.api.get("/v1/me/data", headers=_citizen(world, "youssef")).json()
    assert data["person"]["address"] == "9 Rue Fès, Rabat"
    empty = world.call("office-fes", "PATCH", f"/v1/rnp/persons/{idcs}", json={})
    assert empty.status_code == 422


def test_an_erased_persons_requests_and_reviews_are_shredded_with_them(world: World) -> None:
    from consent import tables as consent_tables
    from identity.tables import rectification_requests
    from tests.gateway.test_erasure import _ask as ask_erasure
    from tests.gateway.test_erasure import _officer as erasure_officer
    from vault import Erased

    asked = _ask(world, {"family_name_lat": NEW_NAME})
    review = world.api.post("/v1/me/score/review", headers=_citizen(world))
    assert review.status_code == 201, review.text
    subject = world.services.rectifications.get(asked["id"]).vault_subject
    opened = ask_erasure(world, erasure_officer(world, "officer-a"), world.people["fatima"])
    assert opened.status_code == 201, opened.text
    approved = world.api.post(
        f"/v1/rnp/erasure-requests/{opened.json()['id']}/approve",
        headers=erasure_officer(world, "officer-b"),
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "carried_out"
    with world.services.engines["main"].connect() as conn:
        left = conn.execute(select(rectification_requests)).all()
        reviews = conn.execute(select(consent_tables.reviews)).all()
    assert left == [] and reviews == []
    try:
        world.services.vault.records.read_one(subject, ("proposed",))
    except Erased:
        pass
    else:
        raise AssertionError("the request's vault record outlived the person")
