"""DecisionIssuer: the only maker of vault.Decision objects; the vault's verifier accepts them."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from policies import DecisionIssuer, EmbeddedEngine, SealRefused
from tests.policies.corpus import NOW
from vault import DecisionRefused, DecisionVerifier


@pytest.fixture(scope="module")
def engine() -> EmbeddedEngine:
    return EmbeddedEngine()


def agency_input(action: str, purpose: str, resource: dict) -> dict:
    return {
        "subject": {
            "kind": "agency",
            "client_id": "c",
            "agency": "anss",
            "sector": "social",
            "scopes": ["agency:query", "agency:eligibility"],
        },
        "action": action,
        "purpose": purpose,
        "resource": resource,
        "consents": [],
        "objections": [],
        "time_ns": NOW,
    }


def test_sealed_decision_verifies_in_the_vault_and_binds_the_release(engine) -> None:
    issuer = DecisionIssuer(Ed25519PrivateKey.generate())
    result = engine.decide(
        agency_input(
            "read_attributes", "asd_payment", {"kind": "person", "fields": ["phone", "birth_date"]}
        )
    )
    decision = issuer.seal(
        result,
        subject="subj-1",
        action="read_attributes",
        purpose="asd_payment",
        audit_index=41,
        requested=["phone", "birth_date"],
    )
    DecisionVerifier(issuer.public_key).verify(decision, "subj-1")
    assert decision.fields == result.fields == ("birth_date", "phone")
    assert dict(decision.obligations) == {"birth_date": "year", "phone": "last2"}
    assert decision.audit_index == 41
    assert decision.policy_revision == engine.revision
    assert decision.decision_id == result.decision_id
    assert 0 < decision.expires_at_ns - decision.issued_at_ns <= 30 * 10**9


def test_a_field_added_after_sealing_breaks_the_signature(engine) -> None:
    issuer = DecisionIssuer(Ed25519PrivateKey.generate())
    result = engine.decide(
        agency_input("read_attributes", "asd_payment", {"kind": "person", "fields": ["phone"]})
    )
    decision = issuer.seal(
        result, "subj-1", "read_attributes", "asd_payment", 1, requested=["phone"]
    )
    forged = dataclasses.replace(decision, fields=("cnie", "phone"))
    with pytest.raises(DecisionRefused):
        DecisionVerifier(issuer.public_key).verify(forged, "subj-1")


def test_another_issuers_key_is_refused(engine) -> None:
    result = engine.decide(
        agency_input("read_attributes", "asd_payment", {"kind": "person", "fields": ["phone"]})
    )
    decision = DecisionIssuer(Ed25519PrivateKey.generate()).seal(
        result, "subj-1", "read_attributes", "asd_payment", 1, requested=["phone"]
    )
    with pytest.raises(DecisionRefused):
        DecisionVerifier(Ed25519PrivateKey.generate().public_key()).verify(decision, "subj-1")


def test_a_denied_result_is_never_sealed(engine) -> None:
    result = engine.decide(
        agency_input("read_attributes", "marketing", {"kind": "person", "fields": ["phone"]})
    )
    assert not result.allow
    with pytest.raises(SealRefused):
        DecisionIssuer(Ed25519PrivateKey.generate()).seal(
            result, "s", "read_attributes", "marketing", 1, requested=["phone"]
        )


def test_eligibility_decision_releases_no_field_and_keeps_the_predicate_aside(engine) -> None:
    issuer = DecisionIssuer(Ed25519PrivateKey.generate())
    result = engine.decide(
        agency_input("eligibility", "asd_payment", {"kind": "household", "program": "asd"})
    )
    assert result.predicate == {"program": "asd", "threshold": "9.743001", "comparison": "lte"}
    decision = issuer.seal(result, "household-1", "eligibility", "asd_payment", 3, requested=[])
    DecisionVerifier(issuer.public_key).verify(decision, "household-1")
    assert decision.fields == () and dict(decision.obligations) == {}


def test_a_result_releasing_unrequested_fields_is_never_sealed(engine) -> None:
    result = engine.decide(
        agency_input("read_attributes", "asd_payment", {"kind": "person", "fields": ["phone"]})
    )
    assert result.fields == ("phone",)
    with pytest.raises(SealRefused):
        DecisionIssuer(Ed25519PrivateKey.generate()).seal(
            result, "s", "read_attributes", "asd_payment", 1, requested=["birth_date"]
        )
