"""The whole mediated path, end to end through HTTP, on SQLite and PostgreSQL (issue: agency
data-access API). Each test names the behaviour it proves."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.gateway.conftest import World

S = 1_000_000_000


def lookup(world: World, agency: str, cnie: str, purpose: str) -> Any:
    return world.call(agency, "POST", "/v1/agency/lookup", json={"cnie": cnie, "purpose": purpose})


def pseudonym(world: World, agency: str, cnie: str, purpose: str) -> str:
    response = lookup(world, agency, cnie, purpose)
    assert response.status_code == 200, response.text
    return str(response.json()["pseudonym"])


def query(world: World, agency: str, pseudo: str, fields: list[str], purpose: str) -> Any:
    return world.call(
        agency,
        "POST",
        f"/v1/agency/persons/{pseudo}/query",
        json={"fields": fields, "purpose": purpose},
    )


def grant(world: World, citizen: str, **body: Any) -> Any:
    token = world.citizen_token(citizen)
    return world.api.post(
        "/v1/me/consents", json=body, headers={"Authorization": f"Bearer {token}"}
    )


def test_statutory_purpose_releases_only_the_declared_fields_without_consent(world: World) -> None:
    p = pseudonym(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    response = query(
        world, "cnss", p, ["given_name_lat", "birth_date", "phone", "cnie"], "amo_tadamon_enrolment"
    )
    assert response.status_code == 200, response.text
    body = response.json()
    # The AMO Tadamon declaration lists names and birth date (full) but neither phone nor CNIE.
    assert body["released"] == {"given_name_lat": "Fatima", "birth_date": "1987-03-14"}
    assert {w["field"]: w["reason"] for w in body["withheld"]} == {
        "phone": "not_declared_for_purpose",
        "cnie": "not_declared_for_purpose",
    }
    assert body["legal_basis"]["type"] == "law"
    assert "AB123456" not in response.text and world.people["fatima"] not in response.text


def test_masking_obligation_shows_a_phone_by_its_last_two_digits(world: World) -> None:
    p = pseudonym(world, "cnss", "AB123456", "asd_payment")
    body = query(world, "cnss", p, ["phone", "birth_date", "family_name_lat"], "asd_payment").json()
    # The ASD declaration grants the full family name but masks the phone and birth date.
    assert body["released"]["family_name_lat"] == "Benali"
    assert body["released"]["phone"] != "+212612345678"
    assert str(body["released"]["phone"]).endswith("78")
    assert body["released"]["birth_date"] == "1987"


def test_consent_purpose_is_denied_without_consent_allowed_with_it_and_denied_after_revocation(
    world: World,
) -> None:
    purpose = "scholarship_outreach"
    before = world.audit_size()
    denied_lookup = lookup(world, "men", "AB123456", purpose)
    assert denied_lookup.status_code == 404  # a refused lookup looks like an unknown person
    assert world.audit_size() == before + 1

    granted = grant(
        world,
        "fatima",
        recipient="men",
        purpose=purpose,
        fields=["given_name_lat", "region"],
        expires_at=datetime.fromtimestamp(int(time.time()) + 30 * 86400, tz=UTC).isoformat(),
    )
    assert granted.status_code == 201, granted.text
    p = pseudonym(world, "men", "AB123456", purpose)
    allowed = query(world, "men", p, ["given_name_lat", "region", "phone"], purpose)
    assert allowed.status_code == 200, allowed.text
    assert set(allowed.json()["released"]) == {"given_name_lat", "region"}
    assert allowed.json()["withheld"] == [{"field": "phone", "reason": "not_consented"}]

    token = world.citizen_token("fatima")
    revoked = world.api.delete(
        f"/v1/me/consents/{granted.json()['id']}", headers={"Authorization": f"Bearer {token}"}
    )
    assert revoked.status_code == 200, revoked.text
    after = query(world, "men", p, ["given_name_lat"], purpose)
    assert after.status_code == 403
    assert "no_valid_consent" in after.json()["reasons"]


def test_household_attributes_come_from_the_household_record(world: World) -> None:
    p = pseudonym(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    body = query(
        world, "cnss", p, ["household_size", "milieu", "given_name_lat"], "amo_tadamon_enrolment"
    ).json()
    assert body["released"]["household_size"] == 1  # Fatima's one-person household
    assert body["released"]["milieu"] in {"urban", "rural"}
    # Youssef is in no household: the field is allowed but there is nothing to release.
    q = pseudonym(world, "cnss", "CD654321", "amo_tadamon_enrolment")
    other = query(world, "cnss", q, ["household_size"], "amo_tadamon_enrolment").json()
    assert other["withheld"] == [{"field": "household_size", "reason": "not_recorded"}]


def test_fields_beyond_the_purpose_are_withheld_each_with_a_reason(world: World) -> None:
    p = pseudonym(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    body = query(
        world, "cnss", p, ["given_name_lat", "address", "birth_place"], "amo_tadamon_enrolment"
    ).json()
    withheld = {w["field"]: w["reason"] for w in body["withheld"]}
    assert withheld == {
        "address": "not_declared_for_purpose",
        "birth_place": "not_declared_for_purpose",
    }


def test_another_sectors_pseudonym_is_404_like_an_unknown_one(world: World) -> None:
    social = pseudonym(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    foreign = query(world, "ms_sante", social, ["phone"], "maternal_health_followup")
    unknown = query(
        world,
        "ms_sante",
        "health.v1.aaaaaaaaaaaaaaaaaaaaaaaaaa",
        ["phone"],
        "maternal_health_followup",
    )
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json()["detail"] == unknown.json()["detail"]


def test_pseudonyms_differ_between_sectors_and_are_stable_within_one(world: World) -> None:
    cnss = pseudonym(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    anam = pseudonym(world, "anam", "AB123456", "amo_tadamon_enrolment")
    assert cnss == anam  # same sector
    grant(
        world,
        "fatima",
        recipient="men",
        purpose="scholarship_outreach",
        fields=["region"],
        expires_at=datetime.fromtimestamp(int(time.time()) + 86400, tz=UTC).isoformat(),
    )
    men = pseudonym(world, "men", "AB123456", "scholarship_outreach")
    assert men != cnss and world.people["fatima"] not in men


def test_eligibility_answers_only_a_boolean_and_the_decision_id(world: World) -> None:
    p = pseudonym(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    response = world.call(
        "cnss",
        "POST",
        f"/v1/agency/persons/{p}/eligibility",
        json={"program": "amo_tadamon", "purpose": "amo_tadamon_enrolment"},
    )
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"eligible", "decision_id"}
    assert isinstance(response.json()["eligible"], bool)


def test_access_log_shows_each_call_right_after_it_happened(world: World) -> None:
    p = pseudonym(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    query(world, "cnss", p, ["given_name_lat", "phone"], "amo_tadamon_enrolment")
    token = world.citizen_token("fatima")
    log = world.api.get("/v1/me/access-log", headers={"Authorization": f"Bearer {token}"})
    assert log.status_code == 200, log.text
    entries = log.json()["entries"]
    actions = [(e["agency"], e["action"], e["purpose"], e["outcome"]) for e in entries]
    assert ("cnss", "read_attributes", "amo_tadamon_enrolment", "allow") in actions
    assert ("cnss", "lookup", "amo_tadamon_enrolment", "allow") in actions
    read = next(e for e in entries if e["action"] == "read_attributes")
    assert read["fields"] == ["given_name_lat"]  # what was released, not what was asked
    assert read["legal_basis"]["type"] == "law"
    # Youssef's log does not show Fatima's uses.
    other = world.api.get(
        "/v1/me/access-log", headers={"Authorization": f"Bearer {world.citizen_token('youssef')}"}
    )
    assert other.json()["entries"] == []


def test_the_access_log_pages_newest_first_through_every_use_without_repeating_one(
    world: World,
) -> None:
    p = pseudonym(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    for _ in range(4):
        query(world, "cnss", p, ["given_name_lat"], "amo_tadamon_enrolment")
    headers = {"Authorization": f"Bearer {world.citizen_token('fatima')}"}
    everything = world.api.get("/v1/me/access-log?limit=200", headers=headers).json()
    assert everything["next_before"] is None
    indexes = [e["index"] for e in everything["entries"]]
    assert len(indexes) >= 5
    assert indexes == sorted(indexes, reverse=True)  # newest first
    paged: list[int] = []
    url = "/v1/me/access-log?limit=2"
    while True:
        page = world.api.get(url, headers=headers)
        assert page.status_code == 200, page.text
        paged.extend(e["index"] for e in page.json()["entries"])
        if page.json()["next_before"] is None:
            break
        url = f"/v1/me/access-log?limit=2&before={page.json()['next_before']}"
    assert paged == indexes


def test_a_receipt_from_the_access_log_verifies_offline(world: World) -> None:
    from audit import verify_receipt

    p = pseudonym(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    query(world, "cnss", p, ["given_name_lat"], "amo_tadamon_enrolment")
    world.services.audit.issue_checkpoint()
    headers = {"Authorization": f"Bearer {world.citizen_token('fatima')}"}
    entry = world.api.get("/v1/me/access-log", headers=headers).json()["entries"][0]
    receipt = world.api.get(entry["receipt"], headers=headers)
    assert receipt.status_code == 200, receipt.text
    verify_receipt(receipt.json())
    other = {"Authorization": f"Bearer {world.citizen_token('youssef')}"}
    assert world.api.get(entry["receipt"], headers=other).status_code == 404


@pytest.mark.parametrize(
    "call", ["lookup", "lookup_unknown", "query", "query_denied", "query_foreign", "eligibility"]
)
def test_every_call_allowed_or_denied_appends_exactly_one_audit_entry(
    world: World, call: str
) -> None:
    p = pseudonym(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    before = world.audit_size()
    if call == "lookup":
        lookup(world, "cnss", "CD654321", "asd_payment")
    elif call == "lookup_unknown":
        assert lookup(world, "cnss", "ZZ999999", "asd_payment").status_code == 404
    elif call == "query":
        query(world, "cnss", p, ["given_name_lat"], "amo_tadamon_enrolment")
    elif call == "query_denied":
        assert (
            query(world, "cnss", p, ["given_name_lat"], "maternal_health_followup").status_code
            == 403
        )
    elif call == "query_foreign":
        assert query(world, "men", p, ["region"], "scholarship_outreach").status_code == 404
    else:
        world.call(
            "cnss",
            "POST",
            f"/v1/agency/persons/{p}/eligibility",
            json={"program": "asd", "purpose": "asd_payment"},
        )
    assert world.audit_size() == before + 1


def test_a_purpose_is_mandatory(world: World) -> None:
    p = pseudonym(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    response = world.call(
        "cnss", "POST", f"/v1/agency/persons/{p}/query", json={"fields": ["given_name_lat"]}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
