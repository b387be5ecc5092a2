"""Breach handling through HTTP (docs/privacy.md, "Breach handling"): a breach from its
registration to the signed CNDP notification and the persons' notices, the 72-hour deadline
and what is overdue as the clock moves, the role every step needs, and bad input that changes
nothing. Each test runs on SQLite and PostgreSQL (the world's database)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from consent import tables as consent_tables
from gateway.breaches import InvalidNotification, tables, verify_notification
from tests.gateway.conftest import World
from tests.gateway.test_cli import run_sijill

HOUR = timedelta(hours=1)
HOUR_NS = 3600 * 1_000_000_000
PROBLEM = "application/problem+json"


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _report(detected: datetime, **changes: Any) -> dict[str, Any]:
    return {
        "title": "Export of the Fès office's enrolment queue left readable",
        "description": "A misconfigured share exposed the day's enrolment queue.",
        "detected_at": _z(detected),
        "occurred_at": _z(detected - 5 * HOUR),
        "person_categories": ["applicants"],
        "persons_affected": 120,
        "record_categories": ["identity", "contact"],
        "records_affected": 130,
        "likely_consequences": "Phishing by telephone using the exposed contact details.",
        "measures": "Share closed; access logs under review.",
        **changes,
    }


def _officer(world: World, officer: str = "dpo-amina") -> dict[str, str]:
    """A data-protection officer signed in through the office console (password + TOTP;
    that flow has its own tests in tests/identity/oauth)."""
    if "dpo-office" not in world.clients:
        world.register("dpo-office", "office", "registry", "breach:manage")
    token, _ = world.oauth.issuer.access_token(
        client_id="dpo-office", scope="breach:manage", subject=officer, subject_kind="officer"
    )
    return {"Authorization": f"Bearer {token}"}


def _count(world: World, table: Any) -> int:
    with world.services.engines["main"].connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _jwks(world: World) -> dict[str, Any]:
    return dict(world.api.get("/oauth/jwks").json())


def _payload(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def _tampered(token: str, change: dict[str, Any]) -> str:
    header, _, signature = token.split(".")
    document = {**_payload(token), **change}
    raw = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
    forged = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def _register(world: World, headers: dict[str, str], **changes: Any) -> dict[str, Any]:
    detected = changes.pop("detected", datetime.now(UTC) - 2 * HOUR)
    response = world.api.post("/v1/breaches", json=_report(detected, **changes), headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_breach_goes_from_registration_to_signed_cndp_notice_and_persons_notices(
    world: World,
) -> None:
    officer = _officer(world)
    detected = (datetime.now(UTC) - 2 * HOUR).replace(microsecond=0)
    before = world.audit_size()
    breach = _register(world, officer, detected=detected)
    assert breach["status"] == "registered"
    assert breach["detected_at"] == _z(detected)
    assert datetime.fromisoformat(breach["cndp_deadline"]) == detected + 72 * HOUR
    assert breach["overdue"] is False
    path = f"/v1/breaches/{breach['id']}"

    assessed = world.api.post(f"{path}/assessment", json={"risk": "high"}, headers=officer)
    assert assessed.status_code == 200, assessed.text
    assert assessed.json()["persons_notice_required"] is True

    sent = world.api.post(f"{path}/cndp-notification", json={}, headers=officer)
    assert sent.status_code == 201, sent.text
    export = sent.json()
    document = verify_notification(export["jws"], _jwks(world))
    assert document == export["document"]
    assert document["format"] == "sijill-breach-notification/1"
    assert document["breach"]["id"] == breach["id"]
    assert document["breach"]["persons_affected_approx"] == 120
    assert document["breach"]["record_categories"] == ["identity", "contact"]
    assert document["within_deadline"] is True
    assert document["notified_by"] == "dpo-office/dpo-amina"
    # The notification's own audit entry, which dates it against a signed checkpoint.
    logged = world.services.audit.entry(document["audit_entry"]["index"])
    assert logged.entry.action == "notify_cndp"
    assert logged.entry.decision_id == document["audit_entry"]["decision_id"]
    # The same export, read back.
    again = world.api.get(f"{path}/cndp-notification", headers=officer).json()
    assert again["jws"] == export["jws"]

    # Tampering with any member, or signing with another key, is detected.
    with pytest.raises(InvalidNotification, match="signature"):
        verify_notification(_tampered(export["jws"], {"within_deadline": False}), _jwks(world))
    with pytest.raises(InvalidNotification, match="key"):
        verify_notification(export["jws"], {"keys": []})

    people = [world.people["fatima"], world.people["youssef"]]
    outbox_before = _count(world, consent_tables.outbox)
    notices = world.api.post(f"{path}/person-notices", json={"persons": people}, headers=officer)
    assert notices.status_code == 200, notices.text
    assert notices.json()["notified"] == 2
    repeat = world.api.post(
        f"{path}/person-notices", json={"persons": people[:1]}, headers=officer
    ).json()
    assert (repeat["notified"], repeat["already_notified"], repeat["persons_notified"]) == (0, 1, 2)
    assert _count(world, consent_tables.outbox) == outbox_before + 2
    with world.services.engines["main"].connect() as conn:
        rows = (
            conn.execute(
                select(consent_tables.outbox).where(
                    consent_tables.outbox.c.event == "breach_notice"
                )
            )
            .mappings()
            .all()
        )
    tags = {world.services.vault.subject_tag(idcs) for idcs in people}
    assert {r["recipient"] for r in rows} == tags
    for row in rows:
        notice = _payload(row["body"])
        text = json.dumps(notice, ensure_ascii=False)
        assert notice["breach"] == breach["id"] and notice["contact"]["email"]
        for secret in [*people, "Fatima", "Youssef", "AB123456", "+212612345678", *tags]:
            assert secret not in text

    closed = world.api.post(f"{path}/closure", json={"summary": "Done."}, headers=officer)
    assert closed.status_code == 200, closed.text
    steps = closed.json()["steps"]
    assert [s["step"] for s in steps] == [
        "register",
        "assess",
        "notify_cndp",
        "notify_persons",
        "notify_persons",
        "close",
    ]
    # One audit entry per request, each step pointing to its own; none holds breach detail
    # or a person.
    assert world.audit_size() == before + 7  # six steps and the read of the export
    for step in steps:
        entry = world.services.audit.entry(step["audit_index"]).entry
        assert entry.outcome == "allow" and entry.subject is None and entry.fields == []
        assert entry.actor["id"] == "dpo-office/dpo-amina"
        canonical = world.services.audit.entry(step["audit_index"]).canonical.decode()
        for secret in [*people, "Fès office", "Phishing", *tags]:
            assert secret not in canonical


def test_deadline_is_72_hours_after_detection_and_overdue_shows_in_list_and_metrics(
    world: World,
) -> None:
    officer = _officer(world)
    breach = _register(world, officer, detected=datetime.now(UTC) - HOUR)
    path = f"/v1/breaches/{breach['id']}"

    def overdue_ids() -> list[str]:
        listed = world.api.get("/v1/breaches", params={"overdue": "true"}, headers=officer)
        assert listed.status_code == 200, listed.text
        return [b["id"] for b in listed.json()["breaches"]]

    def metric() -> float:
        text = world.api.get("/metrics").text
        line = next(x for x in text.splitlines() if x.startswith("sijill_breaches_overdue "))
        return float(line.split()[1])

    assert overdue_ids() == [] and metric() == 0.0
    # 71 hours after detection: still in time.
    real = world.services.breaches.clock
    world.services.breaches.clock = lambda: real() + 70 * HOUR_NS
    assert overdue_ids() == []
    # Past 72 hours: flagged in the list, the detail, the metric.
    world.services.breaches.clock = lambda: real() + 72 * HOUR_NS
    assert overdue_ids() == [breach["id"]]
    assert world.api.get(path, headers=officer).json()["overdue"] is True
    assert metric() == 1.0
    assert world.api.post(f"{path}/assessment", json={"risk": "risk"}, headers=officer).is_success
    # Late: the notification must say why (GDPR art. 33(1)), and says it was late.
    refused = world.api.post(f"{path}/cndp-notification", json={}, headers=officer)
    assert refused.status_code == 422 and refused.headers["content-type"] == PROBLEM
    assert refused.json()["type"].endswith("/delay-reason-required")
    assert world.api.get(path, headers=officer).json()["status"] == "assessed"
    late = world.api.post(
        f"{path}/cndp-notification",
        json={"delay_reason": "The scope was unclear until the share's logs were recovered."},
        headers=officer,
    )
    assert late.status_code == 201, late.text
    assert late.json()["document"]["within_deadline"] is False
    shown = world.api.get(path, headers=officer).json()
    assert (shown["overdue"], shown["notified_late"]) == (False, True)
    assert overdue_ids() == [] and metric() == 0.0


def test_high_risk_breach_closes_only_after_the_persons_are_told(world: World) -> None:
    officer = _officer(world)
    high = f"/v1/breaches/{_register(world, officer)['id']}"
    low = f"/v1/breaches/{_register(world, officer)['id']}"
    for path, risk in ((high, "high"), (low, "unlikely")):
        assert world.api.post(f"{path}/assessment", json={"risk": risk}, headers=officer).is_success
        assert world.api.post(f"{path}/cndp-notification", json={}, headers=officer).is_success
    refused = world.api.post(f"{high}/closure", json={}, headers=officer)
    assert refused.status_code == 409 and refused.headers["content-type"] == PROBLEM
    assert refused.json()["status_now"] == "cndp_notified"
    assert world.api.post(f"{low}/closure", json={}, headers=officer).json()["status"] == "closed"


def test_breach_routes_are_refused_without_the_officer_role(world: World) -> None:
    officer = _officer(world)
    breach = _register(world, officer)
    world.register("dpo-batch", "office", "registry", "breach:manage")
    tokens = {
        "office without breach:manage": world.token("office-fes"),
        "agency": world.token("cnss"),
        "auditor": world.token("cndp"),
        "citizen": world.citizen_token("fatima"),
    }
    routes = [
        ("GET", "/v1/breaches", None),
        ("GET", f"/v1/breaches/{breach['id']}", None),
        ("POST", "/v1/breaches", _report(datetime.now(UTC) - HOUR)),
        ("POST", f"/v1/breaches/{breach['id']}/assessment", {"risk": "high"}),
    ]
    for method, path, body in routes:
        assert world.api.request(method, path, json=body).status_code == 401
        for who, token in tokens.items():
            headers = {"Authorization": f"Bearer {token}"}
            response = world.api.request(method, path, json=body, headers=headers)
            assert response.status_code == 403, (who, path, response.text)
            assert response.headers["content-type"] == PROBLEM
    # A machine client of the office holds the scope but names no officer: the policy
    # refuses it, and the refusal is on the record.
    before = world.audit_size()
    machine = {"Authorization": f"Bearer {world.token('dpo-batch')}"}
    denied = world.api.post("/v1/breaches", json=_report(datetime.now(UTC)), headers=machine)
    assert denied.status_code == 403
    assert denied.json()["reasons"] == ["named_officer_required"]
    assert world.audit_size() == before + 1
    assert _count(world, tables.breaches) == 1
    assert world.api.get(f"/v1/breaches/{breach['id']}", headers=officer).json()["status"] == (
        "registered"
    )


def test_bad_input_is_a_problem_and_changes_nothing(world: World) -> None:
    officer = _officer(world)
    breach = _register(world, officer)
    path = f"/v1/breaches/{breach['id']}"
    now = datetime.now(UTC)
    bad_reports = [
        {k: v for k, v in _report(now).items() if k != "measures"},
        _report(now, detected_at=now.replace(tzinfo=None).isoformat()),  # no offset
        _report(now, persons_affected=-1),
        _report(now, person_categories=[]),
        _report(now, title=""),
        _report(now, surprise="x"),
        _report(now + 2 * HOUR),  # detected in the future
        _report(now, occurred_at=_z(now + HOUR)),  # occurred after its detection
    ]
    state = (
        world.audit_size(),
        _count(world, tables.breaches),
        _count(world, tables.breach_steps),
        _count(world, consent_tables.outbox),
    )
    for body in bad_reports:
        response = world.api.post("/v1/breaches", json=body, headers=officer)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == PROBLEM
    bad_steps = [
        ("POST", f"{path}/assessment", {"risk": "catastrophic"}, 422),
        ("POST", f"{path}/person-notices", {"persons": ["12345"]}, 422),
        ("POST", f"{path}/person-notices", {"persons": []}, 422),
        ("GET", "/v1/breaches/not-a-uuid", None, 422),
        ("GET", "/v1/breaches", {"status": "lost"}, 422),
    ]
    for method, target, body, status in bad_steps:
        if method == "GET":
            response = world.api.get(target, params=body, headers=officer)
        else:
            response = world.api.post(target, json=body, headers=officer)
        assert response.status_code == status, (target, response.text)
        assert response.headers["content-type"] == PROBLEM
    # None of these reached a decision: the log, the register and the outbox are unchanged.
    assert state == (
        world.audit_size(),
        _count(world, tables.breaches),
        _count(world, tables.breach_steps),
        _count(world, consent_tables.outbox),
    )
    # Well-formed but refused after the decision: the attempt is on the record, the register
    # and the outbox are not changed.
    decided = [
        ("/v1/breaches/00000000-0000-4000-8000-000000000000/assessment", {"risk": "high"}, 404),
        (f"{path}/cndp-notification", {}, 409),  # not assessed yet
        (f"{path}/person-notices", {"persons": [world.people["fatima"]]}, 409),
        (f"{path}/closure", {}, 409),
    ]
    for target, body, status in decided:
        response = world.api.post(target, json=body, headers=officer)
        assert response.status_code == status, (target, response.text)
        assert response.headers["content-type"] == PROBLEM
    assert world.api.post(f"{path}/assessment", json={"risk": "high"}, headers=officer).is_success
    assert world.api.post(f"{path}/cndp-notification", json={}, headers=officer).is_success
    outbox = _count(world, consent_tables.outbox)
    unknown = world.api.post(
        f"{path}/person-notices",
        json={"persons": [world.people["fatima"], "2999999999"]},
        headers=officer,
    )
    assert unknown.status_code == 422 and unknown.json()["positions"] == [1]
    assert "2999999999" not in unknown.text
    assert _count(world, consent_tables.outbox) == outbox
    shown = world.api.get(path, headers=officer).json()
    assert (shown["status"], shown["persons_notified"]) == ("cndp_notified", 0)


def test_register_lists_by_status_newest_detection_first(world: World) -> None:
    officer = _officer(world)
    older = _register(world, officer, detected=datetime.now(UTC) - 30 * HOUR)
    newer = _register(world, officer, detected=datetime.now(UTC) - HOUR)
    world.api.post(f"/v1/breaches/{older['id']}/assessment", json={"risk": "risk"}, headers=officer)
    listed = world.api.get("/v1/breaches", headers=officer).json()["breaches"]
    assert [b["id"] for b in listed] == [newer["id"], older["id"]]
    assessed = world.api.get("/v1/breaches", params={"status": "assessed"}, headers=officer)
    assert [b["id"] for b in assessed.json()["breaches"]] == [older["id"]]


def test_sijill_breaches_lists_exports_and_verifies_the_cndp_notification(
    world: World, settings: Any, tmp_path: Path
) -> None:
    officer = _officer(world)
    late = _register(world, officer, detected=datetime.now(UTC) - 80 * HOUR)
    path = f"/v1/breaches/{late['id']}"
    world.api.post(f"{path}/assessment", json={"risk": "risk"}, headers=officer)
    env = {
        "SIJILL_DATA_DIR": str(settings.data_dir),
        "SIJILL_DATABASE_URL": settings.database_urls["main"],
    }
    listed = run_sijill("breaches", "list", "--overdue", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert [(b["id"], b["overdue"]) for b in json.loads(listed.stdout)] == [(late["id"], True)]

    reason = {"delay_reason": "Detected on a holiday weekend."}
    assert world.api.post(f"{path}/cndp-notification", json=reason, headers=officer).is_success
    exported = tmp_path / "notification.jws"
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(_jwks(world)))
    done = run_sijill("breaches", "export", late["id"], "--out", str(exported), env=env)
    assert done.returncode == 0, done.stderr
    verified = run_sijill("breaches", "verify", str(exported), "--jwks", str(jwks))
    assert verified.returncode == 0, verified.stderr
    document = json.loads(verified.stdout)
    assert document["breach"]["id"] == late["id"]
    assert document["delay_reason"] == reason["delay_reason"]

    forged = tmp_path / "forged.jws"
    forged.write_text(_tampered(exported.read_text().strip(), {"within_deadline": True}))
    refused = run_sijill("breaches", "verify", str(forged), "--jwks", str(jwks))
    assert refused.returncode == 2
    assert "does not verify" in refused.stderr


def test_a_correctly_signed_notification_that_is_not_canonical_json_is_refused(
    world: World, settings: Any
) -> None:
    from gateway.breaches.notification import JWS_TYP
    from identity.oauth.jose import sign_jws
    from identity.oauth.keys import SigningKeys

    key = SigningKeys(settings.data_dir / "keys").current()
    document = {"format": "sijill-breach-notification/1", "breach": {"id": "x"}}
    spaced = json.dumps(document, indent=1).encode()
    canonical = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
    good = sign_jws(canonical, key.private_key, kid=key.kid, typ=JWS_TYP)
    assert verify_notification(good, _jwks(world)) == document
    bad = sign_jws(spaced, key.private_key, kid=key.kid, typ=JWS_TYP)
    with pytest.raises(InvalidNotification, match="canonical"):
        verify_notification(bad, _jwks(world))
    other = sign_jws(canonical, key.private_key, kid=key.kid, typ="JWT")
    with pytest.raises(InvalidNotification, match="typ"):
        verify_notification(other, _jwks(world))
