"""The citizen's own routes: data access, score explanation, human review (Law 09.08 art. 7, 11)."""

from __future__ import annotations

from decimal import Decimal

from tests.gateway.conftest import World


def headers(world: World, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.citizen_token(name)}"}


def test_my_data_returns_my_record_and_only_mine(world: World) -> None:
    mine = world.api.get("/v1/me/data", headers=headers(world, "fatima"))
    assert mine.status_code == 200, mine.text
    assert mine.json()["person"]["given_name_lat"] == "Fatima"
    assert mine.json()["idcs"] == world.people["fatima"]
    theirs = world.api.get("/v1/me/data", headers=headers(world, "youssef")).json()
    assert theirs["person"]["given_name_lat"] == "Youssef"


def test_agencies_cannot_use_citizen_routes(world: World) -> None:
    response = world.call("cnss", "GET", "/v1/me/data")
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


def test_score_explanation_adds_up_and_speaks_arabic(world: World) -> None:
    response = world.api.get(
        "/v1/me/score", params={"lang": "ar"}, headers=headers(world, "fatima")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    total = (
        Decimal(str(body["intercept"]))
        + Decimal(str(body["territorial"]["contribution"]))
        + sum(Decimal(str(c["contribution"])) for c in body["contributions"])
    )
    assert abs(total - Decimal(str(body["score"]))) < Decimal("0.00001")
    assert any("\u0600" <= ch <= "\u06ff" for c in body["contributions"] for ch in c["label"])
    assert body["model"]["illustrative"] is True


def test_a_person_outside_the_rsu_has_no_score(world: World) -> None:
    response = world.api.get("/v1/me/score", headers=headers(world, "youssef"))
    assert response.status_code == 404


def test_human_review_of_the_score_is_recorded_and_audited(world: World) -> None:
    before = world.audit_size()
    response = world.api.post("/v1/me/score/review", headers=headers(world, "fatima"))
    assert response.status_code == 201, response.text
    assert world.audit_size() == before + 1
    listed = world.api.get("/v1/me/objections", headers=headers(world, "fatima")).json()
    assert [o["reason"] for o in listed["objections"]] == ["automated_decision"]
    # A review request contests the result; it does not stop lawful processing.
    assert world.services.consents.objections_for_policy(world.people["fatima"]) == []


def test_a_citizen_request_computes_the_subject_tag_once(world: World, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # The entry's subject and the citizen's actor id are the same keyed hash of the IDCS.
    vault = world.services.vault
    original = vault.subject_tag
    tagged: list[str] = []

    def counted(subject: str) -> str:
        tagged.append(subject)
        return original(subject)

    monkeypatch.setattr(vault, "subject_tag", counted)
    before = world.audit_size()
    response = world.api.get("/v1/me/access-log", headers=headers(world, "fatima"))
    assert response.status_code == 200, response.text
    assert tagged == [world.people["fatima"]]
    entry = world.services.audit.entry(before)
    assert entry is not None
    assert entry.entry.subject == entry.entry.actor["id"] == original(world.people["fatima"])
