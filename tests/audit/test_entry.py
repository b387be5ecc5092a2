"""Audit entries: schema, RFC 8785 canonical bytes, leaf hash."""

from __future__ import annotations

import hashlib
import json

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import AuditEntry, InvalidEntry
from tests.audit.conftest import make_entry

text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12)


@settings(max_examples=200, deadline=None)
@given(
    action=text.filter(bool),
    subject=st.none() | text,
    fields=st.lists(text, max_size=4),
    purpose=st.none() | text,
    basis=st.none()
    | st.dictionaries(
        text, text | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1), max_size=3
    ),
    reasons=st.lists(text, max_size=3),
    time_ns=st.integers(0, 2**63 - 1),
)
def test_an_entry_round_trips_through_its_canonical_bytes(
    action: str,
    subject: str | None,
    fields: list[str],
    purpose: str | None,
    basis: dict | None,
    reasons: list[str],
    time_ns: int,
) -> None:
    entry = AuditEntry(
        time_ns=time_ns,
        actor={"kind": "citizen", "id": "c1", "sector": None},
        action=action,
        subject=subject,
        fields=fields,
        purpose=purpose,
        legal_basis=basis,
        outcome="deny",
        reasons=reasons,
    )
    raw = entry.canonical()
    assert raw == rfc8785.dumps(json.loads(raw))
    assert AuditEntry.from_canonical(raw) == entry


def test_leaf_hash_is_sha256_of_zero_byte_and_the_canonical_entry() -> None:
    entry = make_entry(1)
    assert entry.leaf_hash() == hashlib.sha256(b"\x00" + entry.canonical()).digest()


def test_time_is_a_decimal_string_because_i_json_integers_stop_at_2_to_53() -> None:
    assert json.loads(make_entry(0).canonical())["time_ns"] == "1795946400000000000"


@pytest.mark.parametrize(
    "change",
    [
        {"actor": {"kind": "hacker", "id": "x", "sector": None}},
        {"actor": {"kind": "agency", "id": "x"}},
        {"actor": {"kind": "agency", "id": "x", "sector": None, "official": "off_a"}},
        {"actor": {"kind": "agency", "id": "x", "sector": None, "official": 7, "case": "c"}},
        {"outcome": "maybe"},
        {"action": ""},
        {"time_ns": -1},
        {"fields": "region"},
        {"subject": 12},
    ],
)
def test_entries_outside_the_schema_are_refused(change: dict) -> None:
    base = dict(
        time_ns=1,
        actor={"kind": "agency", "id": "cnss", "sector": "health"},
        action="read",
        subject=None,
    )
    with pytest.raises(InvalidEntry):
        AuditEntry(**{**base, **change})


def test_a_non_canonical_encoding_of_an_entry_is_refused() -> None:
    raw = make_entry(0).canonical()
    spaced = json.dumps(json.loads(raw), indent=1).encode()
    with pytest.raises(InvalidEntry, match="canonical"):
        AuditEntry.from_canonical(spaced)


ACTING = {
    "kind": "agency",
    "id": "anss",
    "sector": "social",
    "official": "off_abcdefghijklmnopqrstuvwxyz234567",
    "case": "ASD-R-2026-0042",
}


def test_an_entry_naming_the_acting_official_and_case_round_trips() -> None:
    entry = AuditEntry(time_ns=1, actor=ACTING, action="lookup", subject="st_1")  # type: ignore[typeddict-item]
    raw = entry.canonical()
    assert raw == rfc8785.dumps(json.loads(raw))
    assert json.loads(raw)["actor"] == ACTING
    assert AuditEntry.from_canonical(raw) == entry


def test_an_entry_without_an_official_keeps_the_bytes_it_always_had() -> None:
    """Entries written before officials were recorded still parse and hash the same."""
    raw = (
        b'{"action":"lookup","actor":{"id":"cnss","kind":"agency","sector":"social"},'
        b'"decision_id":null,"fields":[],"legal_basis":null,"outcome":"allow",'
        b'"policy_revision":null,"purpose":"asd_payment","reasons":[],"subject":"st_1",'
        b'"time_ns":"1"}'
    )
    entry = AuditEntry.from_canonical(raw)
    assert entry.canonical() == raw
    assert entry.leaf_hash() == hashlib.sha256(b"\x00" + raw).digest()
