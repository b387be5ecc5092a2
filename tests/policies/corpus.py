"""Seeded generator of policy inputs for parity and property tests.

Inputs are drawn from the vocabulary of the policy data (so that many are allowed) and mixed
with values outside it (so that many are denied): subjects of every kind, every action, every
declared purpose, consents that are current, expired, for other purposes or recipients,
objections, times around validity edges, and malformed shapes.
"""

from __future__ import annotations

import random
from typing import Any

from policies import POLICY_DIR
from policies.engine import load_data, policy_files

DATA = load_data(p for p in policy_files(POLICY_DIR) if p.suffix == ".json")
NOW = 1795910400000000000  # 2026-11-29T00:00:00Z
KINDS = ["agency"] * 6 + ["office", "citizen", "citizen", "auditor", "system", None]
EXTRA_FIELDS = ["unknown_field", "score", "idcs"]


def _entries() -> list[dict[str, Any]]:
    return [e for entries in DATA["registry"].values() for e in entries]


def generate(seed: int, count: int) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    entries = _entries()
    actions = sorted(DATA["actions"])
    fields = sorted(DATA["fields"])
    purposes = [*sorted(DATA["registry"]), "marketing", None]
    programs = [*sorted(DATA["programs"]), "unknown_program"]
    corpus: list[dict[str, Any]] = []
    for _ in range(count):
        kind = rnd.choice(KINDS)
        entry = rnd.choice(entries)
        own = [a for a in actions if kind in DATA["actions"][a]["subjects"]]
        if kind == "agency":
            own = entry["actions"]
        action = (
            rnd.choice(own)
            if own and rnd.random() < 0.85
            else rnd.choice([*actions, "delete_everything"])
        )
        scope = (DATA["actions"].get(action) or {}).get("scope", "none")
        subject: dict[str, Any] = {"kind": kind, "client_id": f"client-{rnd.randrange(5)}"}
        if kind == "agency":
            subject["agency"] = (
                rnd.choice(entry["agencies"]) if rnd.random() < 0.85 else "other_agency"
            )
            subject["sector"] = (
                entry["sector"]
                if rnd.random() < 0.85
                else rnd.choice(["social", "health", "education"])
            )
        if kind == "citizen":
            subject["idcs"] = rnd.choice(["2718281828", "3141592653"])
        scopes = [scope] if rnd.random() < 0.9 else []
        if rnd.random() < 0.3:
            scopes.append("agency:query")
        subject["scopes"] = scopes
        pool = entry["fields"] if kind == "agency" and rnd.random() < 0.7 else fields
        requested = rnd.sample(pool, rnd.randrange(0, min(5, len(pool))))
        if rnd.random() < 0.2:
            requested.append(rnd.choice(EXTRA_FIELDS))
        resource: dict[str, Any] = {
            "kind": rnd.choice(["person", "household", "audit_log"]),
            "fields": requested,
        }
        if kind == "citizen" and rnd.random() < 0.8:
            resource["owner"] = subject["idcs"]
        elif rnd.random() < 0.5:
            resource["owner"] = rnd.choice(["2718281828", "3141592653"])
        if action == "eligibility" or rnd.random() < 0.1:
            resource["program"] = rnd.choice(programs + entry["programs"] * 2)
        purpose = entry["purpose"] if rnd.random() < 0.7 else rnd.choice(purposes)
        consents = []
        for i in range(rnd.choice([0, 1, 1, 2])):
            consent = {
                "id": f"c-{i}",
                "purpose": purpose if rnd.random() < 0.8 else rnd.choice(purposes),
                "fields": rnd.sample(entry["fields"], rnd.randrange(0, len(entry["fields"]))),
                "expires_at": NOW + rnd.choice([-1, 0, 1, 10**12, 10**12]),
            }
            if rnd.random() < 0.3:
                consent["recipient"] = rnd.choice(
                    [subject.get("agency"), subject.get("sector"), "men"]
                )
            if rnd.random() < 0.1:
                consent["revoked"] = True
            consents.append(consent)
        objections = []
        if rnd.random() < 0.2:
            objections.append(
                rnd.choice([{"purpose": purpose}, {"purpose": "*"}, {"sector": entry["sector"]}])
            )
        time_ns = (
            NOW
            if rnd.random() < 0.7
            else rnd.choice(
                [
                    entry["valid_from"] - 1,
                    entry["valid_from"],
                    (entry["valid_until"] or NOW) - 1,
                    entry["valid_until"] or NOW,
                ]
            )
        )
        doc: dict[str, Any] = {
            "subject": subject,
            "action": action,
            "resource": resource,
            "purpose": purpose,
            "consents": consents,
            "objections": objections,
            "time_ns": time_ns,
        }
        if rnd.random() < 0.05:
            del doc["time_ns"]
        if rnd.random() < 0.03:
            doc = {"action": action}
        corpus.append(doc)
    return corpus
