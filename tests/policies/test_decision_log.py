"""The decision log never carries a personal value from the input (canary test)."""

from __future__ import annotations

import json
import logging

import pytest

from policies import EmbeddedEngine
from policies.decision_log import UNLISTED
from tests.policies.corpus import NOW

# Values that would be personal data if they leaked; planted in every input slot.
CANARIES = [
    "CANARY-IDCS-2718281828",
    "Fatima Zahra CANARY",
    "CANARY-CNIE-BK123456",
    "+212600CANARY",
]


def canary_inputs() -> list[dict]:
    idcs, name, cnie, phone = CANARIES
    return [
        {  # an agency that typed personal values into purpose and field names
            "subject": {
                "kind": "agency",
                "client_id": "c",
                "agency": "cnss",
                "sector": name,
                "scopes": ["agency:query"],
            },
            "action": "read_attributes",
            "purpose": cnie,
            "resource": {"kind": "person", "fields": ["phone", phone], "owner": idcs},
            "consents": [{"id": "c1", "purpose": cnie, "fields": [name], "expires_at": NOW + 1}],
            "objections": [{"purpose": name}],
            "time_ns": NOW,
        },
        {  # an allowed citizen request: the IDCS is in the input, never in the log
            "subject": {
                "kind": "citizen",
                "client_id": "portal",
                "idcs": idcs,
                "scopes": ["citizen:self"],
            },
            "action": "read_own_data",
            "purpose": None,
            "resource": {"kind": "person", "fields": ["phone", "cnie"], "owner": idcs},
            "time_ns": NOW,
        },
        {  # an allowed agency read with a purpose from the registry
            "subject": {
                "kind": "agency",
                "client_id": cnie,
                "agency": "cnss",
                "sector": "social",
                "scopes": ["agency:query"],
            },
            "action": "read_attributes",
            "purpose": "asd_payment",
            "resource": {"kind": "person", "fields": ["phone", name], "owner": idcs},
            "consents": [],
            "objections": [],
            "time_ns": NOW,
        },
        {"subject": {"kind": name}, "action": phone, "purpose": idcs, "time_ns": NOW},
    ]


def test_decision_log_has_no_personal_values(caplog: pytest.LogCaptureFixture) -> None:
    engine = EmbeddedEngine()
    with caplog.at_level(logging.INFO, logger="sijill.policy.decisions"):
        for doc in canary_inputs():
            engine.decide(doc)
    logged = [getattr(r, "decision") for r in caplog.records]
    assert len(logged) == len(canary_inputs())
    text = json.dumps(logged) + "\n".join(r.getMessage() for r in caplog.records)
    for canary in CANARIES:
        assert canary not in text
    assert "2718281828" not in text


def test_decision_log_keeps_what_an_auditor_needs(caplog: pytest.LogCaptureFixture) -> None:
    engine = EmbeddedEngine()
    doc = canary_inputs()[2]
    with caplog.at_level(logging.INFO, logger="sijill.policy.decisions"):
        result = engine.decide(doc)
    (record,) = [getattr(r, "decision") for r in caplog.records]
    assert record["decision_id"] == result.decision_id
    assert record["policy_revision"] == engine.revision
    assert record["outcome"] == "allow"
    assert record["action"] == "read_attributes" and record["purpose"] == "asd_payment"
    assert record["released"] == ["phone"]
    assert record["requested"] == sorted(["phone", UNLISTED])
