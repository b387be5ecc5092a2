"""The human review desk through HTTP (Law 09.08 art. 11; docs/privacy.md "Human review"): a
citizen's request reaches the officers' queue with the household under a pseudonym; the
officer reads the declaration and the score's explanation, then confirms, corrects (rescored
in the vault at once) or overrides (the eligibility answer follows); the citizen sees each
outcome with its reasons; every step is audited. Each test runs on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from tests.gateway.conftest import World
from tests.gateway.test_agency_api import pseudonym

PROBLEM = "application/problem+json"


def _officer(world: World, officer: str = "officer-salma") -> dict[str, str]:
    """An officer signed in through the office's pages (password + TOTP; that flow has its
    own tests in tests/identity/oauth)."""
    if "office-desk" not in world.clients:
        world.register("office-desk", "office", "registry", "rsu:review rnp:rectify")
    token, _ = world.oauth.issuer.access_token(
        client_id="office-desk", scope="rsu:review", subject=officer, subject_kind="officer"
    )
    return {"Authorization": f"Bearer {token}"}


def _citizen(world: World, name: str = "fatima") -> dict[str, str]:
    return {"Authorization": f"Bearer {world.citizen_token(name)}"}


def _ask(world: World) -> dict[str, Any]:
    response = world.api.post("/v1/me/score/review", headers=_citizen(world))
    assert response.status_code == 201, response.text
    return dict(response.json())


def _decide(world: World, review_id: str, **body: Any) -> Any:
    return world.api.post(f"/v1/reviews/{review_id}/decision", headers=_officer(world), json=body)


def _my_reviews(world: World) -> dict[str, dict[str, Any]]:
    response = world.api.get("/v1/me/score/reviews", headers=_citizen(world))
    assert response.status_code == 200, response.text
    return {r["id"]: r for r in response.json()["items"]}


def _eligible(world: World) -> bool:
    p = pseudonym(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    response = world.call(
        "cnss",
        "POST",
        f"/v1/agency/persons/{p}/eligibility",
        json={"program": "amo_tadamon", "purpose": "amo_tadamon_enrolment"},
    )
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"eligible", "decision_id"}
    return bool(response.json()["eligible"])


def test_officer_sees_the_household_under_a_pseudonym_with_its_declaration_and_score(
    world: World,
) -> None:
    asked = _ask(world)
    assert asked["status"] == "pending" and asked["due_at"] > asked["created_at"]
    queue = world.api.get("/v1/reviews", headers=_officer(world))
    assert queue.status_code == 200, queue.text
    (item,) = queue.json()["items"]
    household_id = world.services.households.household_id_of(world.people["fatima"])
    assert item["id"] == asked["id"] and item["household"].startswith("hh-")
    assert household_id not in queue.text and world.people["fatima"] not in queue.text
    assert item["due_at"] == asked["due_at"] and item["overdue"] is False

    opened = world.api.get(f"/v1/reviews/{asked['id']}", headers=_officer(world))
    assert opened.status_code == 200, opened.text
    body = opened.json()
    assert body["household"] == item["household"] and body["size"] == 1
    # The declaration as the vault holds it, the members without their identifiers.
    assert {"area", "region", "housing", "utilities", "spending"} <= set(body["declaration"])
    assert [set(m) & {"idcs"} for m in body["declaration"]["members"]] == [set()]
    assert world.people["fatima"] not in opened.text
    mine = world.api.get("/v1/me/score", headers=_citizen(world)).json()
    assert body["score"]["score"] == mine["score"]
    assert body["score"]["contributions"] == mine["contributions"]


def test_confirmation_reaches_the_citizen_with_its_reason_and_is_audited(world: World) -> None:
    asked = _ask(world)
    before = world.audit_size()
    decided = _decide(world, asked["id"], outcome="confirm", reason="The declaration is right.")
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "confirmed"
    entry = world.services.audit.entry(before)
    assert entry is not None
    assert entry.entry.action == "decide_review"
    assert entry.entry.actor["id"] == "office-desk/officer-salma"
    # Filed under the requester's tag: the review is in their own access log.
    assert entry.entry.subject == world.services.vault.subject_tag(world.people["fatima"])
    mine = _my_reviews(world)[asked["id"]]
    assert mine["status"] == "confirmed"
    assert mine["reason"] == "The declaration is right." and mine["eligibility"] is None
    assert mine["decided_at"] is not None
    # Decided once: a second decision is refused and changes nothing.
    again = _decide(world, asked["id"], outcome="override", eligible=True, reason="No.")
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM
    assert _my_reviews(world)[asked["id"]]["status"] == "confirmed"


def test_correction_rescores_the_household_and_the_citizen_sees_the_new_score(
    world: World,
) -> None:
    asked = _ask(world)
    declaration = world.api.get(f"/v1/reviews/{asked['id']}", headers=_officer(world)).json()[
        "declaration"
    ]
    old = world.api.get("/v1/me/score", headers=_citizen(world)).json()
    corrected = {k: v for k, v in declaration.items() if k != "members"}
    rooms = 1 if corrected["housing"]["rooms"] > 1 else 6
    corrected["housing"] = {**corrected["housing"], "rooms": rooms}
    decided = _decide(
        world,
        asked["id"],
        outcome="correct",
        reason="The dwelling's rooms were miscounted.",
        declaration=corrected,
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "corrected"
    new = world.api.get("/v1/me/score", headers=_citizen(world)).json()
    assert new["score"] != old["score"]
    room_answers = [c["value"] for c in new["contributions"] if "room" in c["variable"]]
    assert room_answers and all(str(rooms) in str(v) for v in room_answers)
    assert _my_reviews(world)[asked["id"]]["status"] == "corrected"
    # The rescoring is on the record, as every scoring is.
    actions = [world.services.audit.entry(i).entry.action for i in range(world.audit_size())]
    assert "decide_review" in actions


def test_override_decides_eligibility_for_agencies_and_tells_the_citizen_why(
    world: World,
) -> None:
    first = _ask(world)
    decided = _decide(
        world,
        first["id"],
        outcome="override",
        eligible=False,
        reason="The household receives a pension the questionnaire does not ask about.",
    )
    assert decided.status_code == 200, decided.text
    assert _eligible(world) is False
    second = _ask(world)
    decided = _decide(
        world,
        second["id"],
        outcome="override",
        eligible=True,
        reason="The pension stopped in March.",
    )
    assert decided.status_code == 200, decided.text
    assert _eligible(world) is True
    mine = _my_reviews(world)
    assert mine[second["id"]]["status"] == "overridden"
    assert mine[second["id"]]["eligibility"] == "eligible"
    assert mine[second["id"]]["reason"] == "The pension stopped in March."
    assert mine[first["id"]]["eligibility"] == "not_eligible"
    # A later confirmation gives the model's score its say again.
    third = _ask(world)
    assert _decide(world, third["id"], outcome="confirm", reason="Score right.").status_code == 200
    vault = world.services.vault
    household = world.services.households.household_of(world.people["fatima"])
    assert household is not None
    kind, plain = vault.records.read_one(household, ("override",))
    assert kind == "household" and "override" not in plain


def test_the_desk_needs_a_named_officer_with_the_review_scope(world: World) -> None:
    asked = _ask(world)
    machine = world.call("office-fes", "GET", "/v1/reviews")
    assert machine.status_code == 403 and machine.headers["content-type"] == PROBLEM
    citizen = world.api.get(f"/v1/reviews/{asked['id']}", headers=_citizen(world))
    assert citizen.status_code == 403
    world.register("office-robot", "office", "registry", "rsu:review")
    robot = world.call("office-robot", "POST", f"/v1/reviews/{asked['id']}/decision",
                       json={"outcome": "confirm", "reason": "ok"})  # fmt: skip
    assert robot.status_code == 403
    assert "named_officer_required" in robot.json()["reasons"]
    assert _my_reviews(world)[asked["id"]]["status"] == "pending"


def test_malformed_decisions_change_nothing(world: World) -> None:
    asked = _ask(world)
    old = world.api.get("/v1/me/score", headers=_citizen(world)).json()["score"]
    cases = [
        {"outcome": "override", "reason": "no eligibility given"},
        {"outcome": "confirm", "reason": "x", "eligible": True},
        {"outcome": "correct", "reason": "no declaration"},
        {"outcome": "correct", "reason": "bad", "declaration": {"area": "moon"}},
        {"outcome": "confirm", "reason": ""},
    ]
    for body in cases:
        response = _decide(world, asked["id"], **body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert "moon" not in response.text
    assert _my_reviews(world)[asked["id"]]["status"] == "pending"
    assert world.api.get("/v1/me/score", headers=_citizen(world)).json()["score"] == old
    unknown = _decide(world, "00000000-0000-4000-8000-000000000000", outcome="confirm", reason="x")
    assert unknown.status_code == 404


def test_a_citizen_without_a_household_cannot_ask_for_a_review(world: World) -> None:
    response = world.api.post("/v1/me/score/review", headers=_citizen(world, "youssef"))
    assert response.status_code == 404 and response.json()["type"].endswith("no-household")
