"""Reveal needs a genuine, current decision about this subject, and yields only its fields."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.vault.conftest import PolicyStandIn, sample_person
from vault import Decision, DecisionRefused, DecisionVerifier, Vault
from vault.decision import signing_payload


@pytest.fixture
def stored(vault: Vault) -> Vault:
    vault.store("s-1", "person", sample_person())
    vault.store("s-2", "person", sample_person("other"))
    return vault


def test_reveal_without_a_decision_object_is_refused(stored: Vault) -> None:
    with pytest.raises(DecisionRefused):
        stored.reveal("s-1", ("cnie",), None)  # type: ignore[arg-type]
    with pytest.raises(DecisionRefused):
        stored.reveal("s-1", ("cnie",), {"subject": "s-1", "fields": ["cnie"]})  # type: ignore[arg-type]


def test_decision_signed_by_another_key_is_refused(stored: Vault) -> None:
    forger = PolicyStandIn()
    with pytest.raises(DecisionRefused, match="signature"):
        stored.reveal("s-1", ("cnie",), forger.seal("s-1", ("cnie",)))


def test_decision_releasing_more_than_was_requested_reveals_nothing(
    stored: Vault, policy: PolicyStandIn
) -> None:
    # Genuinely signed, but the policy layer released the CNIE and the phone for a request of
    # the region alone (a permissive or spoofed engine): the vault opens nothing at all.
    generous = policy.seal("s-1", ("cnie", "phone", "region"), requested=("region",))
    with pytest.raises(DecisionRefused, match="not requested"):
        stored.reveal("s-1", ("cnie", "phone", "region"), generous)
    with pytest.raises(DecisionRefused, match="not requested"):
        stored.reveal("s-1", ("region",), generous)
    # Widening what was requested after sealing breaks the signature instead.
    widened = dataclasses.replace(generous, requested=("cnie", "phone", "region"))
    with pytest.raises(DecisionRefused, match="signature"):
        stored.reveal("s-1", ("cnie",), widened)


def test_decision_widened_after_sealing_is_refused(stored: Vault, policy: PolicyStandIn) -> None:
    sealed = policy.seal("s-1", ("region",))
    widened = dataclasses.replace(sealed, fields=("cnie", "region"))
    with pytest.raises(DecisionRefused, match="signature"):
        stored.reveal("s-1", ("cnie",), widened)
    unmasked = dataclasses.replace(
        policy.seal("s-1", ("phone",), {"phone": "last2"}), obligations={}
    )
    with pytest.raises(DecisionRefused, match="signature"):
        stored.reveal("s-1", ("phone",), unmasked)


def test_expired_decision_is_refused(stored: Vault, policy: PolicyStandIn) -> None:
    old = time.time_ns() - 120 * 10**9
    with pytest.raises(DecisionRefused, match="expired"):
        stored.reveal("s-1", ("cnie",), policy.seal("s-1", ("cnie",), ttl_s=30, issued_at_ns=old))


def test_decision_from_the_future_is_refused(stored: Vault, policy: PolicyStandIn) -> None:
    later = time.time_ns() + 3600 * 10**9
    with pytest.raises(DecisionRefused, match="future"):
        stored.reveal("s-1", ("cnie",), policy.seal("s-1", ("cnie",), issued_at_ns=later))


def test_decision_about_another_subject_is_refused(stored: Vault, policy: PolicyStandIn) -> None:
    with pytest.raises(DecisionRefused, match="another subject"):
        stored.reveal("s-2", ("cnie",), policy.seal("s-1", ("cnie",)))


def test_decision_without_an_audit_entry_is_refused(stored: Vault, policy: PolicyStandIn) -> None:
    with pytest.raises(DecisionRefused, match="audit"):
        stored.reveal("s-1", ("cnie",), policy.seal("s-1", ("cnie",), audit_index=-1))


def test_one_bad_decision_in_a_batch_reveals_nothing(stored: Vault, policy: PolicyStandIn) -> None:
    good = ("s-1", ("cnie",), policy.seal("s-1", ("cnie",)))
    bad = ("s-2", ("cnie",), policy.seal("s-1", ("cnie",)))
    with pytest.raises(DecisionRefused):
        stored.reveal_many([good, bad])


def test_decision_for_other_fields_reveals_only_its_own(
    stored: Vault, policy: PolicyStandIn
) -> None:
    got = stored.reveal("s-1", ("cnie", "region", "phone"), policy.seal("s-1", ("region",)))
    assert got == {"region": sample_person()["region"]}
    assert stored.reveal("s-1", ("cnie",), policy.seal("s-1", ("region",))) == {}


def test_masking_obligations_are_applied(stored: Vault, policy: PolicyStandIn) -> None:
    person = sample_person()
    fields = ("birth_date", "phone", "given_name_lat", "address", "region")
    masks = {
        "birth_date": "year",
        "phone": "last2",
        "given_name_lat": "initial",
        "address": "redact",
    }
    got = stored.reveal("s-1", fields, policy.seal("s-1", fields, masks))
    assert got == {
        "birth_date": str(person["birth_date"]).split("-")[0],
        "phone": str(person["phone"])[-2:],
        "given_name_lat": str(person["given_name_lat"])[0],
        "address": None,
        "region": person["region"],
    }


def test_unknown_obligation_refuses_the_decision(stored: Vault, policy: PolicyStandIn) -> None:
    with pytest.raises(DecisionRefused, match="obligation"):
        stored.reveal("s-1", ("cnie",), policy.seal("s-1", ("cnie",), {"cnie": "rot13"}))


def test_signing_payload_is_canonical_json_of_every_field_but_the_seal(
    policy: PolicyStandIn,
) -> None:
    decision = policy.seal("s-1", ("region", "cnie"), {"cnie": "redact"})
    payload = signing_payload(decision)
    doc = json.loads(payload)
    seal = {"signature", "slice_digests"}
    assert set(doc) == {f.name for f in dataclasses.fields(Decision)} - seal
    assert rfc8785.dumps(doc) == payload  # already canonical: re-canonicalising changes nothing
    assert doc["fields"] == list(decision.fields)
    assert int(doc["expires_at_ns"]) == decision.expires_at_ns
    assert doc["obligations"] == {"cnie": "redact"}
    unsigned = dataclasses.replace(decision, signature=b"")
    assert signing_payload(unsigned) == payload
    in_a_slice = dataclasses.replace(decision, slice_digests=(bytes(32), bytes(range(32))))
    assert signing_payload(in_a_slice) == payload


def test_verifier_accepts_the_issuers_decision(policy: PolicyStandIn) -> None:
    decision = policy.seal("s-1", ("cnie",))
    DecisionVerifier(policy.private_key.public_key()).verify(decision, "s-1")


TEXT = st.text(max_size=12)
DECISIONS = st.builds(
    Decision,
    decision_id=TEXT,
    subject=TEXT,
    action=TEXT,
    purpose=TEXT,
    fields=st.lists(TEXT, max_size=4).map(tuple),
    requested=st.lists(TEXT, max_size=4).map(tuple),
    obligations=st.dictionaries(TEXT, TEXT, max_size=3),
    legal_basis=st.dictionaries(TEXT, TEXT, max_size=3),
    policy_revision=TEXT,
    audit_index=st.integers(min_value=0, max_value=2**53 - 1),
    issued_at_ns=st.integers(min_value=0, max_value=2**63),
    expires_at_ns=st.integers(min_value=0, max_value=2**63),
    signature=st.binary(max_size=8),
)


def contract_document(d: Decision) -> dict[str, object]:
    """The payload as /tmp/contracts.md words it: every field but the signature, tuples as
    arrays, mappings as objects, integers beyond I-JSON's 2^53 - 1 as decimal strings."""

    def num(i: int) -> object:
        return str(i) if i > 2**53 - 1 else i

    return {
        "decision_id": d.decision_id,
        "subject": d.subject,
        "action": d.action,
        "purpose": d.purpose,
        "fields": list(d.fields),
        "requested": list(d.requested),
        "obligations": dict(d.obligations),
        "legal_basis": dict(d.legal_basis),
        "policy_revision": d.policy_revision,
        "audit_index": num(d.audit_index),
        "issued_at_ns": num(d.issued_at_ns),
        "expires_at_ns": num(d.expires_at_ns),
    }


@settings(deadline=None)
@given(DECISIONS)
def test_signing_payload_is_what_the_rfc8785_library_writes(decision: Decision) -> None:
    assert signing_payload(decision) == rfc8785.dumps(contract_document(decision))
