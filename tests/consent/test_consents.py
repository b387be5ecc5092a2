"""The consent lifecycle against the processing registry, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from joserfc import jws
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet
from sqlalchemy import Engine, func, select

from consent import ConsentNotFound, ConsentService, ConsentStatus, InvalidConsent, tables
from consent.receipts import iso27560_record
from policies.registry import ProcessingRegistry

S = 1_000_000_000
NOW = 1_800_000_000 * S
IDCS = "2345678901"
PSEUDONYM = "health.v1.abcdefgh"


def grant(service: ConsentService, **overrides: Any):  # type: ignore[no-untyped-def]
    args: dict[str, Any] = dict(
        subject=IDCS,
        principal_id=PSEUDONYM,
        recipient="ms_sante",
        purpose="maternal_health_followup",
        fields=["phone", "given_name_lat"],
        expires_at_ns=NOW + 30 * 86_400 * S,
        method="portal",
        now_ns=NOW,
    )
    args.update(overrides)
    return service.grant(**args)


def rows(engine: Engine, table) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_granted_consent_is_active_and_shaped_for_the_policy(service: ConsentService) -> None:
    consent = grant(service)
    assert consent.status is ConsentStatus.ACTIVE
    [as_input] = service.for_policy(IDCS, now_ns=NOW + S)
    assert as_input == {
        "id": consent.id,
        "purpose": "maternal_health_followup",
        "fields": ["given_name_lat", "phone"],
        "expires_at": NOW + 30 * 86_400 * S,
        "recipient": "ms_sante",
        "revoked": False,
    }


def test_receipt_verifies_with_an_independent_jose_library(
    service: ConsentService, public_jwks: dict[str, Any]
) -> None:
    consent = grant(service)
    keys = KeySet.import_key_set(public_jwks)
    token = jws.deserialize_compact(consent.receipt, keys, algorithms=["ES256"])
    claims = json.loads(token.payload)
    assert claims["version"] == "KI-CR-v1.1.0"
    assert claims["consentReceiptID"] == consent.id
    assert claims["piiPrincipalId"] == PSEUDONYM
    assert IDCS not in consent.receipt and IDCS not in token.payload.decode()
    assert claims["services"][0]["purposes"][0]["piiCategory"] == ["given_name_lat", "phone"]


def test_receipt_with_one_changed_byte_does_not_verify(
    service: ConsentService, public_jwks: dict[str, Any]
) -> None:
    receipt = grant(service).receipt
    header, payload, signature = receipt.split(".")
    # Change one character of the payload (still valid base64url).
    flipped = payload[:10] + ("A" if payload[10] != "A" else "B") + payload[11:]
    keys = KeySet.import_key_set(public_jwks)
    with pytest.raises(BadSignatureError):
        jws.deserialize_compact(".".join([header, flipped, signature]), keys, algorithms=["ES256"])


def test_revocation_makes_a_new_artefact_and_supersedes_the_old(service: ConsentService) -> None:
    consent = grant(service)
    revoked = service.revoke(
        subject=IDCS, consent_id=consent.id, principal_id=PSEUDONYM, now_ns=NOW + 5 * S
    )
    assert revoked.replaces == consent.id and revoked.status is ConsentStatus.REVOKED
    statuses = {c.id: c.status for c in service.of_subject(IDCS, now_ns=NOW + 6 * S)}
    assert statuses == {consent.id: ConsentStatus.SUPERSEDED, revoked.id: ConsentStatus.REVOKED}
    [as_input] = service.for_policy(IDCS, now_ns=NOW + 6 * S)
    assert as_input["revoked"] is True
    assert [c.id for c in service.history(IDCS, revoked.id)] == [consent.id, revoked.id]


def test_a_consent_cannot_be_revoked_twice(service: ConsentService) -> None:
    consent = grant(service)
    service.revoke(subject=IDCS, consent_id=consent.id, principal_id=PSEUDONYM, now_ns=NOW + S)
    with pytest.raises(ConsentNotFound):
        service.revoke(
            subject=IDCS, consent_id=consent.id, principal_id=PSEUDONYM, now_ns=NOW + 2 * S
        )


def test_another_citizen_cannot_revoke_my_consent(service: ConsentService) -> None:
    consent = grant(service)
    with pytest.raises(ConsentNotFound):
        service.revoke(
            subject="3456789012", consent_id=consent.id, principal_id="x", now_ns=NOW + S
        )


def test_consent_expires_at_its_expiry_instant(service: ConsentService) -> None:
    expiry = NOW + 3600 * S
    consent = grant(service, expires_at_ns=expiry)
    assert service.get(IDCS, consent.id).status is ConsentStatus.ACTIVE
    [before] = [c for c in service.of_subject(IDCS, now_ns=expiry - S)]
    [at] = [c for c in service.of_subject(IDCS, now_ns=expiry)]
    assert before.status is ConsentStatus.ACTIVE
    assert at.status is ConsentStatus.EXPIRED


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"purpose": "no_such_purpose"}, "unknown_purpose"),
        ({"fields": ["phone", "cnie"]}, "fields_outside_registry"),
        ({"fields": []}, "no_fields"),
        ({"expires_at_ns": NOW - S}, "expiry_in_past"),
        ({"expires_at_ns": NOW + 366 * 86_400 * S}, "expiry_beyond_maximum"),
        ({"recipient": "cnss"}, "unknown_recipient"),
        ({"purpose": "asd_payment", "recipient": "cnss", "fields": ["phone"]}, "not_consent_based"),
        ({"method": "telepathy"}, "invalid_method"),
    ],
)
def test_invalid_consents_are_refused_and_nothing_is_stored(
    service: ConsentService, engine: Engine, overrides: dict[str, Any], reason: str
) -> None:
    with pytest.raises(InvalidConsent) as info:
        grant(service, **overrides)
    assert info.value.reason == reason
    assert rows(engine, tables.consents) == 0
    assert rows(engine, tables.outbox) == 0


def test_registry_maximum_bounds_the_expiry(service: ConsentService) -> None:
    entry = next(e for e in ProcessingRegistry.load() if e.purpose == "maternal_health_followup")
    limit = NOW + entry.consent_max_days * 86_400 * S
    assert grant(service, expires_at_ns=limit).status is ConsentStatus.ACTIVE
    with pytest.raises(InvalidConsent):
        grant(service, expires_at_ns=limit + S)


def test_each_change_queues_one_signed_notification(
    service: ConsentService, engine: Engine
) -> None:
    consent = grant(service)
    service.revoke(subject=IDCS, consent_id=consent.id, principal_id=PSEUDONYM, now_ns=NOW + S)
    with engine.connect() as conn:
        events = [r.event for r in conn.execute(select(tables.outbox).order_by(tables.outbox.c.id))]
    assert events == ["active", "revoked"]


def test_objection_tells_what_stops_and_which_law_keeps_processing(service: ConsentService) -> None:
    objection = service.object(subject=IDCS, purpose="*", reason="personal_situation", now_ns=NOW)
    effects = {e["purpose"]: e for e in service.objection_effects(objection, now_ns=NOW)}
    assert effects["scholarship_outreach"]["effect"] == "stopped"
    assert effects["asd_payment"]["effect"] == "continues"
    assert "58.23" in effects["asd_payment"]["law"]
    # A lapsed declaration is not processing at all, so the objection says nothing of it.
    assert "household_survey" not in effects
    assert service.objections_for_policy(IDCS) == [{"id": objection.id, "purpose": "*"}]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"reason": "personal_situation"},
        {"reason": "personal_situation", "purpose": "asd_payment", "sector": "social"},
        {"reason": "because", "purpose": "asd_payment"},
        {"reason": "other", "purpose": "nope"},
    ],
)
def test_malformed_objections_are_refused(
    service: ConsentService, engine: Engine, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(InvalidConsent):
        service.object(subject=IDCS, now_ns=NOW, **kwargs)
    assert rows(engine, tables.objections) == 0


def test_iso27560_record_carries_the_chain(service: ConsentService) -> None:
    consent = grant(service)
    revoked = service.revoke(
        subject=IDCS, consent_id=consent.id, principal_id=PSEUDONYM, now_ns=NOW + S
    )
    entry = ProcessingRegistry.load().get(revoked.registry_entry)
    assert entry is not None
    record = iso27560_record(revoked, entry, PSEUDONYM, service.history(IDCS, revoked.id))
    assert record["state"] == "revoked"
    assert [e["record_id"] for e in record["events"]] == [consent.id, revoked.id]
    assert record["pii_principal_id"] == PSEUDONYM


def test_policy_context_reads_what_the_two_separate_reads_answer(service: ConsentService) -> None:
    first = grant(service)
    service.revoke(subject=IDCS, consent_id=first.id, principal_id=PSEUDONYM, now_ns=NOW + S)
    grant(service, purpose="scholarship_outreach", recipient="men", fields=["phone"])
    objection = service.object(subject=IDCS, purpose="*", reason="personal_situation", now_ns=NOW)
    service.request_review(
        subject=IDCS, about="rsu_score", household_id="h_household", now_ns=NOW
    )  # never a policy input
    consents, objections = service.policy_context(IDCS, now_ns=NOW + 2 * S)
    assert consents == service.for_policy(IDCS, now_ns=NOW + 2 * S)
    assert objections == service.objections_for_policy(IDCS)
    assert objections == [{"id": objection.id, "purpose": "*"}]
    assert first.id not in {c["id"] for c in consents}
    assert len(consents) == 2  # the revocation artefact and the other grant


def test_policy_contexts_of_many_subjects_answer_each_as_its_own_read(
    service: ConsentService,
) -> None:
    other, nobody = "3456789012", "4567890123"
    first = grant(service)
    grant(service, subject=other, purpose="scholarship_outreach", recipient="men")
    service.revoke(subject=IDCS, consent_id=first.id, principal_id=PSEUDONYM, now_ns=NOW + S)
    grant(service, fields=["phone"])
    service.object(subject=other, purpose="*", reason="personal_situation", now_ns=NOW)
    many = service.policy_contexts([other, IDCS, nobody, IDCS], now_ns=NOW + 2 * S)
    assert set(many) == {IDCS, other, nobody}
    for subject in (IDCS, other, nobody):
        assert many[subject] == service.policy_context(subject, now_ns=NOW + 2 * S)
    assert many[nobody] == ([], [])
    assert len(many[IDCS][0]) == 2 and many[IDCS][1] == []  # the revocation, the new grant
    assert len(many[other][0]) == 1 and len(many[other][1]) == 1
