"""Agency batch requests through HTTP, on SQLite and PostgreSQL: each item of a batch is
decided, recorded and answered as the single route answers it alone; the batch is recorded
whole or not at all; bad batches are refused whole before anything is decided; the rate limit
counts items."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from audit import AuditLog, Export, StoreUnavailable, verify
from audit.export import LoggedEntry
from gateway import authz
from gateway.routes import agency_batch
from gateway.routes.agency_batch import MAX_ITEMS
from storekit import Transaction
from tests.gateway.conftest import World

CONSENTED = "scholarship_outreach"
UNKNOWN_EDUCATION = "education.v1.aaaaaaaaaaaaaaaaaaaaaaaaaa"
UNKNOWN_SOCIAL = "social.v1.aaaaaaaaaaaaaaaaaaaaaaaaaa"


def pseudonym(world: World, person: str, sector: str) -> str:
    return str(world.services.pseudonyms.pseudonym_for(world.people[person], sector))


def as_citizen(world: World, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.citizen_token(name)}"}


def grant_region(world: World, citizen: str) -> None:
    granted = world.api.post(
        "/v1/me/consents",
        json={
            "recipient": "men",
            "purpose": CONSENTED,
            "fields": ["region"],
            "expires_at": datetime.fromtimestamp(int(time.time()) + 86400, tz=UTC).isoformat(),
        },
        headers=as_citizen(world, citizen),
    )
    assert granted.status_code == 201, granted.text


def lines(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines()]


def new_entries(world: World, before: int) -> list[LoggedEntry]:
    log: AuditLog = world.services.audit
    return log.entries(after=before - 1, limit=MAX_ITEMS + 10)


def same_record(batch: LoggedEntry, single: LoggedEntry) -> None:
    """Two entries of the same question: equal but for their time and decision."""
    a, b = batch.entry, single.entry
    assert (a.actor, a.action, a.subject, a.fields, a.purpose) == (
        b.actor,
        b.action,
        b.subject,
        b.fields,
        b.purpose,
    )
    assert (a.legal_basis, a.outcome, a.reasons, a.policy_revision) == (
        b.legal_basis,
        b.outcome,
        b.reasons,
        b.policy_revision,
    )
    assert (a.decision_id is None) == (b.decision_id is None)


def without_decision(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ("decision_id", "instance")}


def compare_item_by_item(
    world: World,
    agency: str,
    batch_path: str,
    batch_body: dict[str, Any],
    single: list[tuple[str, dict[str, Any]]],
) -> list[dict[str, Any]]:
    """Ask the batch, then each item alone; every item's status, body and audit entry must
    be the single route's (its decision id its own)."""
    before = world.audit_size()
    answered = lines(world.call(agency, "POST", batch_path, json=batch_body))
    batch_entries = new_entries(world, before)
    assert [line["item"] for line in answered] == list(range(len(single)))
    assert len(batch_entries) == len(single)  # one entry an item, nothing else
    for line, entry, (path, body) in zip(answered, batch_entries, single, strict=True):
        before = world.audit_size()
        alone = world.call(agency, "POST", path, json=body)
        [alone_entry] = new_entries(world, before)
        assert line["status"] == alone.status_code, (line, alone.text)
        assert without_decision(line["body"]) == without_decision(alone.json())
        assert ("decision_id" in line["body"]) == ("decision_id" in alone.json())
        if "decision_id" in line["body"]:
            assert line["body"]["decision_id"] == entry.entry.decision_id
            assert line["body"]["decision_id"] != alone.json()["decision_id"]
        same_record(entry, alone_entry)
    decided = [line["body"]["decision_id"] for line in answered if "decision_id" in line["body"]]
    assert len(set(decided)) == len(decided)  # each item its own decision
    return answered


def test_a_query_batch_answers_each_item_as_the_single_route_does(world: World) -> None:
    grant_region(world, "fatima")
    fatima, youssef = (
        pseudonym(world, "fatima", "education"),
        pseudonym(world, "youssef", "education"),
    )
    foreign = pseudonym(world, "fatima", "social")
    items = [
        {"pseudonym": fatima, "fields": ["region", "phone"]},  # consented: region only
        {"pseudonym": youssef, "fields": ["region"]},  # no consent
        {"pseudonym": UNKNOWN_EDUCATION, "fields": ["region"]},  # nobody
        {"pseudonym": foreign, "fields": ["region"]},  # another sector's
        {"pseudonym": fatima, "fields": ["region"]},  # the same person twice
    ]
    answered = compare_item_by_item(
        world,
        "men",
        "/v1/agency/batch/query",
        {"purpose": CONSENTED, "items": items},
        [
            (
                f"/v1/agency/persons/{i['pseudonym']}/query",
                {"fields": i["fields"], "purpose": CONSENTED},
            )
            for i in items
        ],
    )
    assert [line["status"] for line in answered] == [200, 403, 404, 404, 200]
    assert answered[0]["body"]["released"] == {"region": "Fès-Meknès"}
    assert "no_valid_consent" in answered[1]["body"]["reasons"]
    # Unknown and another sector's pseudonym cannot be told apart.
    assert answered[2]["body"] == answered[3]["body"]


def test_an_objection_refuses_its_item_and_not_the_batch(world: World) -> None:
    grant_region(world, "fatima")
    grant_region(world, "youssef")
    objected = world.api.post(
        "/v1/me/objections",
        json={"purpose": "*", "reason": "personal_situation"},
        headers=as_citizen(world, "youssef"),
    )
    assert objected.status_code == 201, objected.text
    items = [
        {"pseudonym": pseudonym(world, "youssef", "education"), "fields": ["region"]},
        {"pseudonym": pseudonym(world, "fatima", "education"), "fields": ["region"]},
    ]
    answered = compare_item_by_item(
        world,
        "men",
        "/v1/agency/batch/query",
        {"purpose": CONSENTED, "items": items},
        [
            (
                f"/v1/agency/persons/{i['pseudonym']}/query",
                {"fields": i["fields"], "purpose": CONSENTED},
            )
            for i in items
        ],
    )
    assert [line["status"] for line in answered] == [403, 200]
    assert "objection" in answered[0]["body"]["reasons"]


def test_an_eligibility_batch_answers_each_item_as_the_single_route_does(world: World) -> None:
    items = [
        {"pseudonym": pseudonym(world, "fatima", "social")},  # heads a scored household
        {"pseudonym": pseudonym(world, "youssef", "social")},  # in no household
        {"pseudonym": UNKNOWN_SOCIAL},
        {"pseudonym": pseudonym(world, "fatima", "health")},  # another sector's
    ]
    answered = compare_item_by_item(
        world,
        "cnss",
        "/v1/agency/batch/eligibility",
        {"program": "asd", "purpose": "asd_payment", "items": items},
        [
            (
                f"/v1/agency/persons/{i['pseudonym']}/eligibility",
                {"program": "asd", "purpose": "asd_payment"},
            )
            for i in items
        ],
    )
    assert [line["status"] for line in answered] == [200, 200, 404, 404]
    assert set(answered[0]["body"]) == {"eligible", "decision_id"}
    assert answered[1]["body"]["eligible"] is False


def ask_given_names(world: World, order: list[str]) -> list[dict[str, Any]]:
    """The answer lines of a CNSS batch asking each pseudonym's given name."""
    return lines(
        world.call(
            "cnss",
            "POST",
            "/v1/agency/batch/query",
            json={
                "purpose": "amo_tadamon_enrolment",
                "items": [{"pseudonym": p, "fields": ["given_name_lat"]} for p in order],
            },
        )
    )


def test_a_batch_over_several_slices_answers_every_item_once_in_order(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(authz, "SEAL_SLICE", 2)
    monkeypatch.setattr(agency_batch, "SEAL_SLICE", 2)
    fatima, youssef = pseudonym(world, "fatima", "social"), pseudonym(world, "youssef", "social")
    order = [fatima, UNKNOWN_SOCIAL, youssef, fatima, UNKNOWN_SOCIAL, youssef, fatima]
    answered = ask_given_names(world, order)
    assert [line["item"] for line in answered] == list(range(len(order)))
    names = [line["body"].get("released", {}).get("given_name_lat") for line in answered]
    assert names == ["Fatima", None, "Youssef", "Fatima", None, "Youssef", "Fatima"]
    assert [line["status"] for line in answered] == [200, 404, 200, 200, 404, 200, 200]


class Counted:
    """An Ed25519 key of the running gateway, counting its signatures or verifications."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.calls = inner, 0

    def sign(self, data: bytes) -> bytes:
        self.calls += 1
        return bytes(self.inner.sign(data))

    def verify(self, signature: bytes, data: bytes) -> None:
        self.calls += 1
        self.inner.verify(signature, data)


def test_a_slice_of_items_costs_one_signature_and_one_vault_check(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    fatima, youssef = pseudonym(world, "fatima", "social"), pseudonym(world, "youssef", "social")
    issuer = world.services.decision_issuer
    verifier = world.services.vault._verifier._inner
    signer, checker = Counted(issuer._key), Counted(verifier._public_key)
    monkeypatch.setattr(issuer, "_key", signer)
    monkeypatch.setattr(verifier, "_public_key", checker)
    order = [fatima, youssef, UNKNOWN_SOCIAL, fatima, youssef]
    answered = ask_given_names(world, order)
    assert [line["status"] for line in answered] == [200, 200, 404, 200, 200]
    assert (signer.calls, checker.calls) == (1, 1)
    # The single route seals and checks its one decision alone.
    alone = world.call(
        "cnss",
        "POST",
        f"/v1/agency/persons/{fatima}/query",
        json={"purpose": "amo_tadamon_enrolment", "fields": ["given_name_lat"]},
    )
    assert alone.status_code == 200
    assert (signer.calls, checker.calls) == (2, 2)


def test_each_item_is_a_line_of_the_citizens_access_log(world: World) -> None:
    social = pseudonym(world, "fatima", "social")
    item = {"pseudonym": social, "fields": ["given_name_lat"]}
    before = world.audit_size()
    answered = lines(
        world.call(
            "cnss",
            "POST",
            "/v1/agency/batch/query",
            json={"purpose": "amo_tadamon_enrolment", "items": [item, item, item]},
        )
    )
    indexes = [e.index for e in new_entries(world, before)]
    log = world.api.get("/v1/me/access-log", headers=as_citizen(world, "fatima")).json()
    mine = [e for e in log["entries"] if e["index"] in indexes]
    assert sorted(e["index"] for e in mine) == indexes
    assert all(e["action"] == "read_attributes" and e["agency"] == "cnss" for e in mine)
    assert all(e["fields"] == ["given_name_lat"] for e in mine)
    assert [line["status"] for line in answered] == [200, 200, 200]
    # The same question thrice within the policy's horizon: one evaluation, reused by the
    # next two items, each with its own decision id and an entry naming the evaluation.
    first, *again = [e.entry for e in new_entries(world, before)[:3]]
    assert [e.reused_decision_id for e in again] == [first.decision_id] * 2
    assert len({first.decision_id, *(e.decision_id for e in again)}) == 3
    youssef = world.api.get("/v1/me/access-log", headers=as_citizen(world, "youssef")).json()
    assert youssef["entries"] == []


def test_batches_and_single_requests_at_once_keep_one_consistent_log(world: World) -> None:
    social = pseudonym(world, "fatima", "social")
    headers = {"Authorization": f"Bearer {world.token('cnss')}"}
    fields = {"fields": ["given_name_lat"], "purpose": "amo_tadamon_enrolment"}
    batch = {
        "purpose": "amo_tadamon_enrolment",
        "items": [{"pseudonym": social, "fields": ["given_name_lat"]}] * 20,
    }
    before = world.audit_size()

    def single(_: int) -> int:
        path = f"/v1/agency/persons/{social}/query"
        return int(world.api.post(path, json=fields, headers=headers).status_code)

    def batched(_: int) -> int:
        answer = world.api.post("/v1/agency/batch/query", json=batch, headers=headers)
        assert all(line["status"] == 200 for line in lines(answer))
        return 200

    with ThreadPoolExecutor(max_workers=4) as pool:
        # Interleaved: a batch's one append races the single requests' group commits.
        calls = [pool.submit(batched if i % 5 == 0 else single, i) for i in range(15)]
        statuses = [call.result() for call in calls]
    assert statuses == [200] * 15
    assert world.audit_size() == before + 12 + 3 * 20
    log: AuditLog = world.services.audit
    assert verify(Export.from_lines(log.export_lines()), verifier_key=log.verifier_key).ok


def test_the_rate_limit_counts_items_not_requests(world: World) -> None:
    limiter = world.services.rate_limiter
    limiter.rate, limiter.burst = 0.01, 5
    social = pseudonym(world, "fatima", "social")
    batch = {"program": "asd", "purpose": "asd_payment", "items": [{"pseudonym": social}] * 4}
    assert world.call("cnss", "POST", "/v1/agency/batch/eligibility", json=batch).status_code == 200
    before = world.audit_size()
    # One token is left: a batch of four is refused whole, before anything is decided.
    refused = world.call("cnss", "POST", "/v1/agency/batch/eligibility", json=batch)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) >= 1
    assert world.audit_size() == before
    single = world.call(
        "cnss",
        "POST",
        f"/v1/agency/persons/{social}/eligibility",
        json={"program": "asd", "purpose": "asd_payment"},
    )
    assert single.status_code == 200  # the last token
    again = world.call(
        "cnss",
        "POST",
        f"/v1/agency/persons/{social}/eligibility",
        json={"program": "asd", "purpose": "asd_payment"},
    )
    assert again.status_code == 429


def test_a_batch_larger_than_the_burst_passes_once_and_leaves_the_bucket_in_debt(
    world: World,
) -> None:
    limiter = world.services.rate_limiter
    limiter.rate, limiter.burst = 0.01, 2
    social = pseudonym(world, "fatima", "social")
    batch = {"program": "asd", "purpose": "asd_payment", "items": [{"pseudonym": social}] * 3}
    assert world.call("cnss", "POST", "/v1/agency/batch/eligibility", json=batch).status_code == 200
    small = {**batch, "items": batch["items"][:1]}
    assert world.call("cnss", "POST", "/v1/agency/batch/eligibility", json=small).status_code == 429


def test_an_audit_failure_mid_batch_releases_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    social = pseudonym(world, "fatima", "social")

    def fails_to_commit(self: Any) -> None:
        # The entries were sent in the sequencer's transaction; its COMMIT, sent with them, fails.
        raise StoreUnavailable("the audit store went away")

    monkeypatch.setattr(Transaction, "commit", fails_to_commit)
    before = world.audit_size()
    item = {"pseudonym": social, "fields": ["given_name_lat", "family_name_lat"]}
    response = world.call(
        "cnss",
        "POST",
        "/v1/agency/batch/query",
        json={"purpose": "amo_tadamon_enrolment", "items": [item] * 5},
    )
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/audit-unavailable")
    assert "Fatima" not in response.text and "Benali" not in response.text
    monkeypatch.undo()
    assert world.audit_size() == before  # none of the batch's entries was recorded
    # The log goes on from where it was.
    again = world.call(
        "cnss",
        "POST",
        "/v1/agency/batch/query",
        json={"purpose": "amo_tadamon_enrolment", "items": [item]},
    )
    assert lines(again)[0]["body"]["released"]["given_name_lat"] == "Fatima"
    assert world.audit_size() == before + 1


@pytest.mark.parametrize(
    ("items", "status", "kind"),
    [
        (MAX_ITEMS + 1, 413, "batch-too-large"),
        (0, 422, "validation-error"),
        ("malformed", 422, "validation-error"),
        ("unknown-fields", 422, "unknown-field"),
    ],
)
def test_a_bad_batch_is_refused_whole_before_anything_is_decided(
    world: World, items: int | str, status: int, kind: str
) -> None:
    good = {"pseudonym": pseudonym(world, "fatima", "social"), "fields": ["given_name_lat"]}
    if items == "malformed":
        batch = [good, {"pseudonym": "AB123456", "fields": ["given_name_lat"]}, good]
    elif items == "unknown-fields":
        batch = [good, {**good, "fields": ["shoe_size"]}]
    else:
        assert isinstance(items, int)
        batch = [good] * items
    before = world.audit_size()
    response = world.call(
        "cnss",
        "POST",
        "/v1/agency/batch/query",
        json={"purpose": "amo_tadamon_enrolment", "items": batch},
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith(f"/{kind}")
    assert "AB123456" not in response.text and "Fatima" not in response.text
    if items == "malformed":
        assert [e["field"] for e in response.json()["errors"]] == ["items.1.pseudonym"]
    assert world.audit_size() == before


def test_a_purpose_the_agency_is_not_registered_for_refuses_the_batch_once(world: World) -> None:
    social = pseudonym(world, "fatima", "social")
    before = world.audit_size()
    response = world.call(
        "cnss",
        "POST",
        "/v1/agency/batch/eligibility",
        json={
            "program": "asd",
            "purpose": "maternal_health_followup",
            "items": [{"pseudonym": social}] * 3,
        },
    )
    assert response.status_code == 403
    assert response.json()["type"].endswith("/purpose-not-registered")
    assert world.audit_size() == before + 1  # the refusal, about no one
