"""Law-enforcement queries under court control through HTTP (docs/privacy.md,
"Law-enforcement queries"): an authorised office enters a court order; the law-enforcement
client queries only under it; each access is in the log at once, the auditor sees it at once,
and the person's own view (access log, receipts, export, notices) shows it, with the order's
reference, only when the embargo ends. Each test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from consent import tables as consent_tables
from consent.outbox import ACCESS_NOTICE
from gateway.court_orders import tables
from tests.gateway.conftest import World
from tests.gateway.test_agency_api import pseudonym, query
from tests.gateway.test_cli import run_sijill
from tests.gateway.test_notifications import (  # noqa: F401  (fixtures: the delivery job runs)
    _job_passed,
    _opt_in,
    _sent,
    sender_settings,
    settings,
)

DAY = timedelta(days=1)
DAY_NS = 86_400 * 1_000_000_000
POLICE = "dgsn-pj"
PURPOSE = "criminal_investigation"
FIELDS = ["family_name_lat", "address"]
PROBLEM = "application/problem+json"


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _officer(world: World, officer: str = "greffier-karim") -> dict[str, str]:
    """An officer of the office authorised to enter court orders, signed in through the
    console (that flow has its own tests in tests/identity/oauth)."""
    if "orders-office" not in world.clients:
        world.register("orders-office", "office", "registry", "court_order:manage")
    token, _ = world.oauth.issuer.access_token(
        client_id="orders-office",
        scope="court_order:manage",
        subject=officer,
        subject_kind="officer",
    )
    return {"Authorization": f"Bearer {token}"}


def _police(world: World, client_id: str = POLICE) -> dict[str, str]:
    if client_id not in world.clients:
        world.register(client_id, "law_enforcement", "police", "court_order:query")
    return {"Authorization": f"Bearer {world.token(client_id)}"}


def _auditor(world: World) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.token('cndp')}"}


def _citizen(world: World, name: str = "fatima") -> dict[str, str]:
    return {"Authorization": f"Bearer {world.citizen_token(name)}"}


def _order(world: World, reference: str, **changes: Any) -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0)
    return {
        "reference": reference,
        "court": "Tribunal de première instance de Fès",
        "issued_at": _z(now - DAY),
        "client_id": POLICE,
        "person": world.people["fatima"],
        "fields": FIELDS,
        "purposes": [PURPOSE],
        "valid_until": _z(now + 30 * DAY),
        "embargo_until": _z(now + 90 * DAY),
        **changes,
    }


def _enter(world: World, reference: str = "TPI-FES-2026-0412", **changes: Any) -> dict[str, Any]:
    _police(world, str(changes.get("client_id", POLICE)))
    response = world.api.post(
        "/v1/court-orders", json=_order(world, reference, **changes), headers=_officer(world)
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def _subject(world: World, reference: str, client_id: str = POLICE) -> Any:
    return world.api.post(
        f"/v1/law-enforcement/court-orders/{reference}/subject",
        json={"purpose": PURPOSE},
        headers=_police(world, client_id),
    )


def _query(world: World, pseudo: str, reference: str, fields: list[str] = FIELDS, **kw: Any) -> Any:
    return world.api.post(
        f"/v1/law-enforcement/persons/{pseudo}/query",
        json={"fields": fields, "purpose": kw.get("purpose", PURPOSE), "court_order": reference},
        headers=_police(world, kw.get("client_id", POLICE)),
    )


def _pseudonym(world: World, reference: str) -> str:
    response = _subject(world, reference)
    assert response.status_code == 200, response.text
    return str(response.json()["pseudonym"])


def _citizen_log(world: World, name: str = "fatima") -> list[dict[str, Any]]:
    response = world.api.get("/v1/me/access-log?limit=200", headers=_citizen(world, name))
    assert response.status_code == 200, response.text
    return list(response.json()["entries"])


def _audited(world: World, reference: str) -> list[dict[str, Any]]:
    response = world.api.get(
        f"/v1/audit/entries?court_order={reference}&limit=100", headers=_auditor(world)
    )
    assert response.status_code == 200, response.text
    return list(response.json()["entries"])


def _move_clock(world: World, days: int) -> Callable[[], None]:
    register = world.services.court_orders
    real = register.clock
    register.clock = lambda: real() + days * DAY_NS

    def restore() -> None:
        register.clock = real

    return restore


def _orders(world: World) -> int:
    with world.services.engines["main"].connect() as conn:
        return int(conn.execute(select(func.count()).select_from(tables.court_orders)).scalar_one())


def test_a_query_without_an_order_is_refused_and_on_the_record(world: World) -> None:
    reference = _enter(world)["reference"]
    pseudo = _pseudonym(world, reference)
    before = world.audit_size()

    refused = _query(world, pseudo, "TPI-NONE-0001")
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert refused.json()["type"].endswith("/court-order-required")
    assert refused.json()["reasons"] == ["court_order_required"]
    assert "released" not in refused.json()
    unknown_subject = _subject(world, "TPI-NONE-0001")
    assert unknown_subject.status_code == 403
    assert unknown_subject.json()["type"].endswith("/court-order-required")

    logged = [world.services.audit.entry(i).entry for i in range(before, world.audit_size())]
    assert [(e.action, e.outcome, e.reasons) for e in logged] == [
        ("court_order_query", "deny", ["court_order_required"]),
        ("court_order_subject", "deny", ["court_order_required"]),
    ]
    assert all(e.actor["kind"] == "law_enforcement" for e in logged)
    # No order, no embargo: the person sees the refused attempt at once.
    shown = [e for e in _citizen_log(world) if e["actor_kind"] == "law_enforcement"]
    assert [(e["action"], e["outcome"], e["court_order"]) for e in shown] == [
        ("court_order_query", "deny", None)
    ]


def test_a_query_under_an_order_is_logged_at_once_and_shown_to_the_person_when_the_embargo_ends(
    world: World,
) -> None:
    order = _enter(world)
    reference = order["reference"]
    embargo_until = datetime.fromisoformat(order["embargo_until"])
    pseudo = _pseudonym(world, reference)
    answer = _query(world, pseudo, reference, [*FIELDS, "phone"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body["released"]) == set(FIELDS)
    assert body["withheld"] == [{"field": "phone", "reason": "not_released"}]
    assert body["legal_basis"]["court_order"] == reference

    # In the log at once, with the order and its embargo; the auditor sees every step.
    logged = world.services.audit.entry(world.audit_size() - 1).entry
    assert logged.action == "court_order_query" and logged.outcome == "allow"
    assert logged.subject == world.services.vault.subject_tag(world.people["fatima"])
    assert logged.court_order == {
        "reference": reference,
        "embargo_until_ns": str(int(embargo_until.timestamp()) * 1_000_000_000),
    }
    seen = _audited(world, reference)
    assert [e["action"] for e in seen] == [
        "register_court_order",
        "court_order_subject",
        "court_order_query",
    ]
    assert all(e["court_order"]["reference"] == reference for e in seen)

    # The person's view: nothing of it until the embargo ends, the receipt included.
    assert not [e for e in _citizen_log(world) if e["court_order"]]
    assert not [e for e in _citizen_log(world) if e["actor_kind"] == "law_enforcement"]
    index = seen[-1]["index"]
    receipt = world.api.get(f"/v1/me/access-log/{index}/receipt", headers=_citizen(world))
    assert receipt.status_code == 404
    export = world.api.get("/v1/me/export", headers=_citizen(world)).json()
    assert not [e for e in export["access_log"] if e["court_order"]]
    assert "police" not in {p["sector"] for p in export["pseudonyms"]}

    restore = _move_clock(world, 89)
    try:
        assert not [e for e in _citizen_log(world) if e["court_order"]]
    finally:
        restore()
    assert _audited(world, reference) == seen  # the auditor's view did not change

    restore = _move_clock(world, 91)
    try:
        shown = [e for e in _citizen_log(world) if e["court_order"]]
        assert [(e["action"], e["court_order"]) for e in shown] == [
            ("court_order_query", reference),
            ("court_order_subject", reference),
            ("register_court_order", reference),
        ]
        assert shown[0]["actor_kind"] == "law_enforcement"
        assert shown[0]["agency"] is None
        assert shown[0]["fields"] == sorted(FIELDS)
        assert world.api.get(shown[0]["receipt"], headers=_citizen(world)).status_code in (200, 503)
        export = world.api.get("/v1/me/export", headers=_citizen(world)).json()
        assert [e["action"] for e in export["access_log"] if e["court_order"]] == [
            "court_order_query",
            "court_order_subject",
            "register_court_order",
        ]
        assert "police" in {p["sector"] for p in export["pseudonyms"]}
    finally:
        restore()


def test_an_embargo_beyond_the_policy_bound_is_refused_and_nothing_is_entered(
    world: World,
) -> None:
    now = datetime.now(UTC)
    _police(world)
    before = _orders(world)
    response = world.api.post(
        "/v1/court-orders",
        json=_order(world, "TPI-FES-2026-0500", embargo_until=_z(now + 200 * DAY)),
        headers=_officer(world),
    )
    assert response.status_code == 403
    assert "embargo_beyond_bound" in response.json()["reasons"]
    assert _orders(world) == before
    logged = world.services.audit.entry(world.audit_size() - 1).entry
    assert (logged.action, logged.outcome) == ("register_court_order", "deny")
    # Nor is a pseudonym made for the client's sector: the person's export names none.
    export = world.api.get("/v1/me/export", headers=_citizen(world)).json()
    assert "police" not in {p["sector"] for p in export["pseudonyms"]}


def test_an_order_serves_only_its_client_its_person_its_purposes_and_its_fields(
    world: World,
) -> None:
    reference = _enter(world)["reference"]
    other = _enter(world, "TPI-RBT-2026-0077", person=world.people["youssef"])["reference"]
    fatima = _pseudonym(world, reference)
    youssef = _pseudonym(world, other)
    assert fatima != youssef

    # Another law-enforcement client: the order does not exist for it.
    _police(world, "gr-pj")
    foreign = _subject(world, reference, client_id="gr-pj")
    assert foreign.status_code == 403
    assert foreign.json()["reasons"] == ["court_order_required"]

    wrong_person = _query(world, youssef, reference)
    assert wrong_person.status_code == 403
    assert wrong_person.json()["type"].endswith("/court-order-refused")
    assert wrong_person.json()["reasons"] == ["person_not_in_court_order"]

    wrong_purpose = _query(world, fatima, reference, purpose="tax_investigation")
    assert wrong_purpose.json()["reasons"] == ["purpose_not_in_court_order"]

    no_field = _query(world, fatima, reference, ["phone"])
    assert no_field.status_code == 403
    assert no_field.json()["reasons"] == ["no_field_in_court_order"]


def test_a_revoked_or_expired_order_allows_nothing(world: World) -> None:
    reference = _enter(world)["reference"]
    pseudo = _pseudonym(world, reference)
    officer = _officer(world)
    revoked = world.api.post(f"/v1/court-orders/{reference}/revoke", headers=officer)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_by"] == "orders-office/greffier-karim"
    refused = _query(world, pseudo, reference)
    assert refused.status_code == 403
    assert refused.json()["reasons"] == ["court_order_revoked"]

    now = datetime.now(UTC)
    lapsed = _enter(
        world,
        "TPI-FES-2025-0999",
        issued_at=_z(now - 40 * DAY),
        valid_until=_z(now - DAY),
        embargo_until=_z(now + 10 * DAY),
    )["reference"]
    expired = _subject(world, lapsed)
    assert expired.status_code == 403
    assert expired.json()["reasons"] == ["court_order_expired"]


def test_only_a_named_officer_enters_orders_and_only_a_law_enforcement_client_queries(
    world: World,
) -> None:
    _police(world)
    world.register("orders-batch", "office", "registry", "court_order:manage")
    machine = world.api.post(
        "/v1/court-orders",
        json=_order(world, "TPI-FES-2026-0600"),
        headers={"Authorization": f"Bearer {world.token('orders-batch')}"},
    )
    assert machine.status_code == 403
    assert machine.json()["reasons"] == ["named_officer_required"]

    reference = _enter(world)["reference"]
    agency = world.call(
        "cnss",
        "POST",
        f"/v1/law-enforcement/court-orders/{reference}/subject",
        json={"purpose": PURPOSE},
    )
    assert agency.status_code == 403

    listed = world.api.get(f"/v1/court-orders?client_id={POLICE}", headers=_officer(world))
    assert listed.status_code == 200
    shown = listed.json()["court_orders"]
    assert [o["reference"] for o in shown] == [reference]
    # The register's view names no person: the officer who entered the order knows them.
    assert world.people["fatima"] not in listed.text
    assert "person" not in shown[0] and "subject" not in shown[0]


@pytest.mark.parametrize(
    ("change", "status", "kind"),
    [
        ({"client_id": "cnss"}, 422, "not-a-law-enforcement-client"),
        ({"person": "2345678901"}, 422, "unknown-person"),
        ({"reference": "x"}, 422, "validation-error"),
        ({"embargo_until": "2027-01-01T00:00:00"}, 422, "validation-error"),
    ],
)
def test_a_bad_order_is_refused_whole(
    world: World, change: dict[str, Any], status: int, kind: str
) -> None:
    _police(world)
    before = (_orders(world), world.audit_size())
    body = {**_order(world, "TPI-FES-2026-0700"), **change}
    response = world.api.post("/v1/court-orders", json=body, headers=_officer(world))
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["type"].endswith(f"/{kind}")
    assert body["person"] not in response.text  # no personal data echoed
    assert (_orders(world), world.audit_size()) == before


def test_a_reference_is_entered_once(world: World) -> None:
    reference = _enter(world)["reference"]
    again = world.api.post(
        "/v1/court-orders", json=_order(world, reference), headers=_officer(world)
    )
    assert again.status_code == 409
    assert again.json()["type"].endswith("/court-order-exists")


def test_the_persons_notice_of_a_query_under_an_order_waits_for_the_embargo(
    world: World,
) -> None:
    _opt_in(world, language="fr")
    order = _enter(world)
    reference = order["reference"]
    pseudo = _pseudonym(world, reference)
    assert _query(world, pseudo, reference).status_code == 200
    # An agency's use after it, told at once: the job has read past the query when it is sent.
    agency = pseudonym(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    read = query(world, "cnss", agency, ["given_name_lat"], "amo_tadamon_enrolment")
    assert read.status_code == 200
    _job_passed(world, world.audit_size() - 1)
    deadline = time.monotonic() + 30
    while len(_sent(world)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    sent = _sent(world)
    assert sent and all(reference not in m["text"] for m in sent)
    embargo_ns = int(datetime.fromisoformat(order["embargo_until"]).timestamp()) * 1_000_000_000
    with world.services.engines["main"].connect() as conn:
        waiting = conn.execute(
            select(consent_tables.outbox.c.body, consent_tables.outbox.c.next_attempt_ns).where(
                consent_tables.outbox.c.event == ACCESS_NOTICE,
                consent_tables.outbox.c.next_attempt_ns >= embargo_ns,
            )
        ).all()
    # The law-enforcement client's two uses (the pseudonym, the query) wait for the embargo.
    assert len(waiting) == 2
    assert all(reference in row.body for row in waiting)


def test_sijill_court_orders_lists_the_register_without_the_person(world: World) -> None:
    reference = _enter(world)["reference"]
    configured = world.services.settings
    env = {
        "SIJILL_DATA_DIR": str(configured.data_dir),
        "SIJILL_DATABASE_URL": configured.database_urls["main"],
    }
    listed = run_sijill("court-orders", "list", "--client", POLICE, "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["reference"], r["in_force"], r["entered_by"]) for r in rows] == [
        (reference, True, "orders-office/greffier-karim")
    ]
    assert world.people["fatima"] not in listed.stdout


def test_a_law_enforcement_client_over_its_rate_is_refused_and_the_refusal_recorded(
    world: World,
) -> None:
    reference = _enter(world)["reference"]
    pseudo = _pseudonym(world, reference)
    limiter = world.services.rate_limiter
    limiter.rate, limiter.burst = 0.01, 1
    before = world.audit_size()

    statuses = [_query(world, pseudo, reference).status_code for _ in range(3)]
    assert statuses[0] == 200
    assert statuses[1:] == [429, 429]
    limited = _query(world, pseudo, reference)
    assert limited.headers["content-type"].startswith(PROBLEM)
    assert int(limited.headers["retry-after"]) >= 1

    world.services.security_events.flush(final=True)  # events are written in bounded batches
    logged = [world.services.audit.entry(i).entry for i in range(before, world.audit_size())]
    queries = [e for e in logged if e.action == "court_order_query"]
    assert [e.outcome for e in queries] == ["allow"]  # a refused request decides nothing
    refusals = [e for e in logged if e.action == "security.rate_limited"]
    assert refusals and all(e.actor["kind"] == "law_enforcement" for e in refusals)
    assert all(e.actor["id"] == POLICE for e in refusals)
