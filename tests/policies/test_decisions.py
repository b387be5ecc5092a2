"""DecisionIssuer: the only maker of vault.Decision objects; the vault's verifier accepts them."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from policies import DecisionIssuer, EmbeddedEngine, SealRefused
from tests.policies.corpus import NOW
from vault import Decision, DecisionRefused, DecisionVerifier
from vault.decision import decision_digest


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


class CountingKey:
    """The issuer's public key, counting the Ed25519 verifications the vault asks of it."""

    def __init__(self, issuer: DecisionIssuer) -> None:
        self.inner = issuer.public_key
        self.calls = 0

    def verify(self, signature: bytes, data: bytes) -> None:
        self.calls += 1
        self.inner.verify(signature, data)


def slice_of(engine: EmbeddedEngine, issuer: DecisionIssuer, n: int) -> list[Decision]:
    result = engine.decide(
        agency_input("read_attributes", "asd_payment", {"kind": "person", "fields": ["phone"]})
    )
    drafts = [
        issuer.draft(result, f"subj-{i}", "read_attributes", "asd_payment", 10 + i,
                     requested=["phone"])
        for i in range(n)
    ]  # fmt: skip
    return issuer.seal_many(drafts)


def test_a_slice_of_decisions_is_verified_with_one_signature_check(engine) -> None:
    issuer = DecisionIssuer(Ed25519PrivateKey.generate())
    sealed = slice_of(engine, issuer, 5)
    assert len({d.signature for d in sealed}) == 1
    key = CountingKey(issuer)
    verifier = DecisionVerifier(key)
    for i, decision in enumerate(sealed):
        verifier.verify(decision, f"subj-{i}")
        assert decision.audit_index == 10 + i
    assert key.calls == 1
    # Each stays bound to its own subject, as if sealed alone.
    with pytest.raises(DecisionRefused, match="another subject"):
        verifier.verify(sealed[0], "subj-1")


def test_a_decision_altered_after_its_slice_was_sealed_is_refused(engine) -> None:
    issuer = DecisionIssuer(Ed25519PrivateKey.generate())
    sealed = slice_of(engine, issuer, 3)
    verifier = DecisionVerifier(issuer.public_key)
    verifier.verify(sealed[0], "subj-0")  # the slice's signature is now remembered as valid
    widened = dataclasses.replace(sealed[1], fields=("cnie", "phone"), requested=("cnie", "phone"))
    with pytest.raises(DecisionRefused, match="signature"):
        verifier.verify(widened, "subj-1")
    # Putting the altered decision's digest in the slice breaks the slice's signature instead.
    digests = list(sealed[1].slice_digests)
    digests[1] = decision_digest(widened)
    relisted = dataclasses.replace(widened, slice_digests=tuple(digests))
    with pytest.raises(DecisionRefused, match="signature"):
        verifier.verify(relisted, "subj-1")


def test_a_decision_cannot_borrow_another_slices_signature(engine) -> None:
    issuer = DecisionIssuer(Ed25519PrivateKey.generate())
    first, second = slice_of(engine, issuer, 2), slice_of(engine, issuer, 2)
    verifier = DecisionVerifier(issuer.public_key)
    verifier.verify(second[0], "subj-0")
    borrowed = dataclasses.replace(
        first[0], signature=second[0].signature, slice_digests=second[0].slice_digests
    )
    with pytest.raises(DecisionRefused, match="signature"):
        verifier.verify(borrowed, "subj-0")


def test_a_slice_signature_and_a_single_one_cannot_stand_for_each_other(engine) -> None:
    issuer = DecisionIssuer(Ed25519PrivateKey.generate())
    verifier = DecisionVerifier(issuer.public_key)
    in_slice = slice_of(engine, issuer, 2)[0]
    with pytest.raises(DecisionRefused, match="signature"):
        verifier.verify(dataclasses.replace(in_slice, slice_digests=()), "subj-0")
    (alone,) = slice_of(engine, issuer, 1)
    assert alone.slice_digests == ()
    verifier.verify(alone, "subj-0")
    as_slice = dataclasses.replace(alone, slice_digests=(decision_digest(alone),))
    with pytest.raises(DecisionRefused, match="signature"):
        verifier.verify(as_slice, "subj-0")
