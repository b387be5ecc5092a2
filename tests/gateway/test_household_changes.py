"""Household changes by a registration office (issue #24): a member joins or leaves, a split,
a new declaration; each decided and audited, recorded in the household's history, rescored in
the vault at once, and seen by the citizen. Through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from identity import PersonIn
from identity.idcs import verhoeff_check_digit
from policies.registry import DATA_DIR
from rsu.synthetic import declaration as synthetic_declaration
from tests.gateway.conftest import FATIMA, YOUSSEF, World

RSU = "/v1/rsu/households"
AMINA = {**FATIMA, "given_name_lat": "Amina", "given_name_ar": "أمينة", "cnie": "EF246810",
         "birth_date": "1990-05-20", "family_name_lat": "Alaoui",
         "family_name_ar": "العلوي"}  # fmt: skip
BABY = {**AMINA, "given_name_lat": "Yasmine", "given_name_ar": "ياسمين", "cnie": None,
        "birth_date": "2025-10-01"}  # fmt: skip
OMAR = {**YOUSSEF, "given_name_lat": "Omar", "given_name_ar": "عمر", "cnie": "GH135791",
        "birth_date": "1950-01-09"}  # fmt: skip


def member(idcs: str, relation: str, sex: str, age: int, **more: Any) -> dict[str, Any]:
    return {"idcs": idcs, "relation": relation, "sex": sex, "age": age, **more}


def a_declaration(seed: int) -> dict[str, Any]:
    return synthetic_declaration(random.Random(seed), "Rabat-Salé-Kénitra", "Rabat", 3)


def citizen(world: World, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.citizen_token(name)}"}


@pytest.fixture
def family(world: World) -> tuple[World, str]:
    """Youssef heads a household with his wife Amina and his father Omar, registered over
    HTTP by the Fès office (sector "registry"); Yasmine is enrolled, in no household yet."""
    for name, record in (("amina", AMINA), ("baby", BABY), ("omar", OMAR)):
        world.people[name] = str(world.services.register.enrol(PersonIn(**record)))
    p = world.people
    response = world.call("office-fes", "POST", RSU, json={
        "members": [
            member(p["youssef"], "head", "M", 47, occupation="employed", education="secondary"),
            member(p["amina"], "spouse", "F", 35, occupation="inactive"),
            member(p["omar"], "parent", "M", 76, occupation="retired"),
        ],
        "declaration": a_declaration(1),
    })  # fmt: skip
    assert response.status_code == 201, response.text
    return world, str(response.json()["household_id"])


def score(world: World, name: str) -> Decimal:
    response = world.api.get("/v1/me/score", headers=citizen(world, name))
    assert response.status_code == 200, response.text
    return Decimal(str(response.json()["score"]))


def eligible(world: World, cnie: str) -> bool:
    found = world.call(
        "cnss", "POST", "/v1/agency/lookup",
        json={"cnie": cnie, "purpose": "amo_tadamon_enrolment"},
    )  # fmt: skip
    assert found.status_code == 200, found.text
    response = world.call(
        "cnss", "POST", f"/v1/agency/persons/{found.json()['pseudonym']}/eligibility",
        json={"program": "amo_tadamon", "purpose": "amo_tadamon_enrolment"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    return bool(response.json()["eligible"])


def history(world: World, name: str) -> list[dict[str, Any]]:
    response = world.api.get("/v1/me/household/history", headers=citizen(world, name))
    assert response.status_code == 200, response.text
    return list(response.json()["changes"])


def last_entry(world: World) -> dict[str, Any]:
    stored = world.services.audit.entry(world.audit_size() - 1)
    assert stored is not None
    return json.loads(stored.entry.canonical())  # type: ignore[no-any-return]


def assert_rescored_and_audited(
    world: World, before: Decimal, start: int, action: str, name: str = "youssef"
) -> Decimal:
    """The household's score moved, the agency predicate follows the new score, and the
    change is on the audit log under its action, without an IDCS or a name."""
    after = score(world, name)
    assert after != before
    programs = json.loads((DATA_DIR / "programs.json").read_text(encoding="utf-8"))
    threshold = Decimal(programs["programs"]["amo_tadamon"]["threshold"])
    assert eligible(world, YOUSSEF["cnie"] if name == "youssef" else AMINA["cnie"]) == (
        after <= threshold
    )
    entries = [world.services.audit.entry(i) for i in range(start, world.audit_size())]
    changes = [e.entry for e in entries if e is not None and e.entry.action == action]
    assert len(changes) == 1 and changes[0].outcome == "allow"
    text = changes[0].canonical().decode()
    assert changes[0].legal_basis and "Law 72.18" in changes[0].legal_basis["ref"]
    for value in (*world.people.values(), "Youssef", "Amina", "Yasmine", "Omar"):
        assert value not in text
    return after


def test_each_change_is_rescored_audited_and_in_the_citizens_history(
    family: tuple[World, str],
) -> None:
    world, household = family
    p = world.people
    before = score(world, "youssef")

    start = world.audit_size()
    born = world.call("office-fes", "POST", f"{RSU}/{household}/members", json={
        "member": member(p["baby"], "child", "F", 0), "reason": "birth",
    })  # fmt: skip
    assert born.status_code == 200, born.text
    assert born.json()["size"] == 4 and born.json()["dissolved"] is False
    assert "score" not in born.text
    before = assert_rescored_and_audited(world, before, start, "add_household_member")

    start = world.audit_size()
    died = world.call(
        "office-fes", "DELETE", f"{RSU}/{household}/members/{p['omar']}", params={"reason": "death"}
    )
    assert died.status_code == 200, died.text
    assert died.json()["size"] == 3
    before = assert_rescored_and_audited(world, before, start, "remove_household_member")

    start = world.audit_size()
    declared = world.call("office-fes", "PUT", f"{RSU}/{household}/declaration", json={
        "members": [
            member(p["youssef"], "head", "M", 47, occupation="unemployed"),
            member(p["amina"], "spouse", "F", 35),
            member(p["baby"], "child", "F", 0),
        ],
        "declaration": a_declaration(2),
    })  # fmt: skip
    assert declared.status_code == 200, declared.text
    before = assert_rescored_and_audited(world, before, start, "declare_household")

    start = world.audit_size()
    amina_before = before
    split = world.call("office-fes", "POST", f"{RSU}/{household}/split", json={
        "members": [member(p["amina"], "head", "F", 35), member(p["baby"], "child", "F", 0)],
        "declaration": a_declaration(3),
    })  # fmt: skip
    assert split.status_code == 200, split.text
    new = split.json()["new_household"]
    assert split.json()["size"] == 1 and new["size"] == 2 and new["household_id"] != household
    assert_rescored_and_audited(world, before, start, "split_household")
    assert_rescored_and_audited(world, amina_before, start, "split_household", name="amina")

    assert [(c["kind"], c["reason"], c["size_before"], c["size_after"]) for c in
            history(world, "youssef")] == [
        ("registered", None, 0, 3),
        ("member_added", "birth", 3, 4),
        ("member_removed", "death", 4, 3),
        ("declared", None, 3, 3),
        ("split", None, 3, 1),
    ]  # fmt: skip
    assert all(c["office"] == "office-fes" for c in history(world, "youssef"))
    amina = history(world, "amina")
    assert [(c["kind"], c["size_after"]) for c in amina] == [("split_from", 2)]


def test_bad_input_changes_nothing(family: tuple[World, str]) -> None:
    world, household = family
    p = world.people
    before, changes, size = score(world, "youssef"), history(world, "youssef"), 3
    never_enrolled = "2" + "74563918"
    never_enrolled += verhoeff_check_digit(never_enrolled)
    refused = [
        ("POST", f"{RSU}/{household}/members", {"json": {
            "member": member(never_enrolled, "child", "F", 0), "reason": "birth"}},
         "unknown-member"),
        ("POST", f"{RSU}/{household}/members", {"json": {
            "member": member(p["fatima"], "spouse", "F", 38), "reason": "marriage"}},
         "already-in-household"),
        ("POST", f"{RSU}/{household}/members", {"json": {
            "member": member(p["baby"], "head", "F", 0), "reason": "birth"}},
         "validation-error"),
        ("DELETE", f"{RSU}/{household}/members/{p['youssef']}", {"params": {"reason": "death"}},
         "validation-error"),  # the head leaves and no one is named to head
        ("DELETE", f"{RSU}/{household}/members/{p['fatima']}", {"params": {"reason": "death"}},
         "not-a-member"),
        ("PUT", f"{RSU}/{household}/declaration", {"json": {
            "members": [member(p["youssef"], "head", "M", 47)],
            "declaration": a_declaration(2)}}, "not-a-member"),
        ("POST", f"{RSU}/{household}/split", {"json": {
            "members": [member(p["youssef"], "head", "M", 47),
                        member(p["amina"], "spouse", "F", 35),
                        member(p["omar"], "parent", "M", 76)],
            "declaration": a_declaration(3)}}, "validation-error"),  # no one left behind
    ]  # fmt: skip
    for method, path, kwargs, kind in refused:
        response = world.call("office-fes", method, path, **kwargs)
        assert response.status_code in (404, 422), (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith(kind), response.text
        # The detail and errors name no IDCS (``instance`` is the caller's own path).
        said = json.dumps({k: v for k, v in response.json().items() if k != "instance"})
        for idcs in world.people.values():
            assert idcs not in said
    assert score(world, "youssef") == before
    assert history(world, "youssef") == changes
    assert world.services.households.get(household).size == size
    assert world.services.households.household_id_of(p["baby"]) is None


def test_another_sectors_or_an_unknown_household_is_404_and_on_the_record(
    family: tuple[World, str],
) -> None:
    world, household = family
    world.register("office-oujda", "office", "registry-oriental", "rsu:register")
    changes = history(world, "youssef")
    unknown = "h_" + "0" * 24
    for office, target in (("office-oujda", household), ("office-fes", unknown)):
        start = world.audit_size()
        response = world.call(office, "POST", f"{RSU}/{target}/members", json={
            "member": member(world.people["baby"], "child", "F", 0), "reason": "birth",
        })  # fmt: skip
        assert response.status_code == 404, response.text
        assert response.headers["content-type"] == "application/problem+json"
        entry = last_entry(world)
        assert world.audit_size() == start + 1
        assert entry["action"] == "add_household_member" and entry["outcome"] == "deny"
    response = world.call(
        "office-oujda", "DELETE", f"{RSU}/{household}/members/{world.people['omar']}",
        params={"reason": "death"},
    )  # fmt: skip
    assert response.status_code == 404
    assert history(world, "youssef") == changes


def test_a_member_sees_the_household_by_relation_and_only_their_own_answers(
    family: tuple[World, str],
) -> None:
    world, _household = family
    response = world.api.get("/v1/me/household", headers=citizen(world, "amina"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert sorted((m["relation"], m["you"]) for m in body["members"]) == [
        ("head", False), ("parent", False), ("spouse", True),
    ]  # fmt: skip
    assert body["size"] == 3 and body["milieu"] == a_declaration(1)["area"]
    assert body["declaration"]["housing"] == a_declaration(1)["housing"]
    assert body["your_answers"]["relation"] == "spouse"
    for name in ("youssef", "omar"):
        assert world.people[name] not in response.text
    assert world.api.get("/v1/me/household", headers=citizen(world, "baby")).status_code == 404


def test_the_last_member_leaving_dissolves_the_household(world: World) -> None:
    fatima = world.people["fatima"]
    household = world.services.households.household_id_of(fatima)
    response = world.call(
        "office-fes", "DELETE", f"{RSU}/{household}/members/{fatima}",
        params={"reason": "departure"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json()["dissolved"] is True and response.json()["size"] == 0
    gone = world.api.get("/v1/me/household/history", headers=citizen(world, "fatima"))
    assert gone.status_code == 404
    assert [e.kind for e in world.services.households.history(str(household))][-1] == "dissolved"


def test_the_command_line_changes_a_household_as_the_office_through_the_policy(
    family: tuple[World, str], settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.cli.rsu import app

    world, household = family
    p = world.people
    monkeypatch.setenv("SIJILL_DATABASE_URL", settings.database_urls["main"])
    monkeypatch.setenv("SIJILL_DATA_DIR", str(settings.data_dir))
    before = score(world, "youssef")
    body = tmp_path / "birth.json"
    body.write_text(json.dumps({"member": member(p["baby"], "child", "F", 0), "reason": "birth"}))
    start = world.audit_size()
    added = CliRunner().invoke(app, [
        "household", "add-member", household, str(body), "--office", "office-fes",
        "--officer", "officer-nadia",
    ])  # fmt: skip
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["size"] == 4
    assert_rescored_and_audited(world, before, start, "add_household_member")
    entry = [world.services.audit.entry(i) for i in range(start, world.audit_size())]
    assert any(e and e.entry.actor["id"] == "office-fes/officer-nadia" for e in entry)
    assert history(world, "youssef")[-1]["kind"] == "member_added"

    # An office that is not registered changes nothing; a refusal is one line, no traceback.
    refused = CliRunner().invoke(app, [
        "household", "remove-member", household, p["omar"], "--reason", "death",
        "--office", "office-nowhere",
    ])  # fmt: skip
    assert refused.exit_code == 2 and "not an enabled registration office" in refused.output
    gone = CliRunner().invoke(app, [
        "household", "remove-member", "h_" + "0" * 24, p["omar"], "--reason", "death",
        "--office", "office-fes",
    ])  # fmt: skip
    assert gone.exit_code == 2 and "not-found" in gone.output
    assert world.services.households.get(household).size == 4


def test_the_head_leaving_names_who_heads_now(family: tuple[World, str]) -> None:
    world, household = family
    p = world.people
    response = world.call(
        "office-fes", "DELETE", f"{RSU}/{household}/members/{p['youssef']}",
        params={"reason": "departure", "new_head": p["amina"]},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    mine = world.api.get("/v1/me/household", headers=citizen(world, "amina")).json()
    assert [m["relation"] for m in mine["members"] if m["you"]] == ["head"]
    assert world.api.get("/v1/me/household", headers=citizen(world, "youssef")).status_code == 404
    assert history(world, "amina")[-1]["kind"] == "member_removed"
