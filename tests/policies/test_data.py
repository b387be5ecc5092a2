"""The policy data is well-formed: every registry entry is complete and consistent."""

from __future__ import annotations

from policies import POLICY_DIR
from policies.engine import load_data, policy_files
from vault.decision import MASKS

DATA = load_data(p for p in policy_files(POLICY_DIR) if p.suffix == ".json")
REQUIRED = {
    "id",
    "sector",
    "agencies",
    "purpose",
    "legal_basis",
    "actions",
    "programs",
    "fields",
    "full_fields",
    "cndp_declaration",
    "valid_from",
    "valid_until",
    "retention",
}
BASES = {"law", "consent", "public_task", "legitimate_interest", "contract", "vital_interest"}


def entries() -> list[dict]:
    return [e for group in DATA["registry"].values() for e in group]


def test_every_registry_entry_is_complete_and_filed_under_its_purpose() -> None:
    ids = set()
    for purpose, group in DATA["registry"].items():
        for entry in group:
            assert REQUIRED <= set(entry), entry.get("id")
            assert entry["purpose"] == purpose
            assert entry["id"] not in ids
            ids.add(entry["id"])
            assert entry["legal_basis"]["type"] in BASES and entry["legal_basis"]["ref"]
            # Integer nanoseconds: the policy compares them with input.time_ns.
            assert isinstance(entry["valid_from"], int) and isinstance(entry["valid_until"], int)
            assert entry["valid_from"] < entry["valid_until"]
            assert set(entry["actions"]) <= set(DATA["actions"])
            assert set(entry["fields"]) <= set(DATA["fields"])
            assert set(entry["full_fields"]) <= set(entry["fields"])
            assert set(entry["programs"]) <= set(DATA["programs"])
            assert entry["cndp_declaration"].startswith("CNDP-")


def test_demo_registry_shows_both_a_statutory_and_a_consent_basis() -> None:
    types = {e["legal_basis"]["type"] for e in entries()}
    assert {"law", "consent"} <= types
    assert {e["sector"] for e in entries()} >= {"social", "health", "education"}


def test_every_mask_is_one_the_vault_applies() -> None:
    masks = {c["mask"] for c in DATA["field_categories"].values()} - {"none"}
    assert masks <= MASKS
    for spec in DATA["fields"].values():
        assert spec["category"] in DATA["field_categories"]


def test_program_thresholds_are_exact_decimal_strings() -> None:
    assert DATA["programs"]["asd"]["threshold"] == "9.743001"
    assert DATA["programs"]["amo_tadamon"]["threshold"] == "9.3264284"


def test_every_action_names_its_subjects_scope_and_basis() -> None:
    for name, action in DATA["actions"].items():
        assert action["subjects"] and action["scope"], name
        if action["basis"] != "registry":
            assert action["legal_basis"]["type"] == "law", name
