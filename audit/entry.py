"""One audit entry and its leaf hash.

Entries are serialised as RFC 8785 canonical JSON (``storekit.jcs``), so every verifier
recomputes the same bytes and therefore the same RFC 6962 leaf hash ``SHA-256(0x00 ‖ entry)``.
An entry holds no personal value: ``subject`` is a keyed hash (``vault.subject_tag``) and the
other fields name agencies, purposes and legal bases, never people.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, TypedDict, cast

from audit.errors import InvalidEntry
from audit.merkle import leaf_hash
from storekit import jcs

ActorKind = Literal["agency", "office", "citizen", "auditor", "system", "law_enforcement"]
Outcome = Literal["allow", "deny", "error"]
ACTOR_KINDS: frozenset[str] = frozenset(
    {"agency", "office", "citizen", "auditor", "system", "law_enforcement"}
)
OUTCOMES: frozenset[str] = frozenset({"allow", "deny", "error"})
_ACTOR_KEYS = frozenset({"kind", "id", "sector"})
# An agency's call made by a named official (RFC 8693 token exchange): the official's
# pseudonymous id at the agency and the case reference. Entries without them keep the three
# keys, so their canonical bytes, and every leaf hash already in the log, stay as they were.
_ACTING_KEYS = frozenset({"kind", "id", "sector", "official", "case"})
# A law-enforcement query's court order: its reference and the end of its embargo (a decimal
# string of nanoseconds, as time_ns), until which the person's own view omits the entry.
_ORDER_KEYS = frozenset({"reference", "embargo_until_ns"})


class Actor(TypedDict):
    kind: ActorKind
    id: str
    sector: str | None
    official: NotRequired[str]
    case: NotRequired[str]


def canonical_json(document: Mapping[str, Any], *, plain: bool | None = None) -> bytes:
    """RFC 8785 canonical JSON of ``document`` (:func:`storekit.jcs.canonical_json`), refused as
    :class:`InvalidEntry` when it has none."""
    try:
        return jcs.canonical_json(document, plain=plain)
    except jcs.NotCanonicalisable as exc:
        raise InvalidEntry(f"entry is not canonicalisable JSON: {exc}") from None


@dataclass(frozen=True)
class AuditEntry:
    """Who did what, to whose (pseudonymous) record, for which purpose, on which basis."""

    time_ns: int
    actor: Actor
    action: str
    subject: str | None
    fields: list[str] = field(default_factory=list)
    purpose: str | None = None
    legal_basis: dict[str, Any] | None = None
    decision_id: str | None = None
    policy_revision: str | None = None
    outcome: Outcome = "allow"
    reasons: list[str] = field(default_factory=list)
    # The decision whose evaluation this one repeats (the same policy revision and input,
    # within the horizon the policy stated): that entry holds the evaluation. Written only
    # when set, so an entry of a fresh evaluation has the form it always had.
    reused_decision_id: str | None = None
    # The court order a law-enforcement query was made under; written only when set, as
    # ``reused_decision_id`` is.
    court_order: dict[str, str] | None = None

    def __post_init__(self) -> None:
        # Every entry appended passes here (a national rescoring, millions): direct checks,
        # no sets, generators or getattr loops built per call.
        time_ns = self.time_ns
        integer = type(time_ns) is int or (
            isinstance(time_ns, int) and not isinstance(time_ns, bool)
        )
        if not integer or time_ns < 0:
            raise InvalidEntry("time_ns must be a non-negative integer")
        actor = self.actor
        if not (type(actor) is dict or isinstance(actor, Mapping)):
            raise InvalidEntry("actor must be an object")
        keys = actor.keys()
        if keys != _ACTOR_KEYS and (
            keys != _ACTING_KEYS
            or not isinstance(actor["official"], str)
            or not isinstance(actor["case"], str)
        ):
            raise InvalidEntry(
                "actor must have exactly the keys kind, id and sector "
                "(and official and case, both strings, for an acting official)"
            )
        if actor["kind"] not in ACTOR_KINDS:
            raise InvalidEntry("actor.kind is not one of " + ", ".join(sorted(ACTOR_KINDS)))
        sector = actor["sector"]
        if not isinstance(actor["id"], str) or not (sector is None or isinstance(sector, str)):
            raise InvalidEntry("actor.id must be a string and actor.sector a string or null")
        if self.outcome not in OUTCOMES:
            raise InvalidEntry("outcome is not one of " + ", ".join(sorted(OUTCOMES)))
        if not self.action or not isinstance(self.action, str):
            raise InvalidEntry("action must be a non-empty string")
        for name, value in (
            ("subject", self.subject),
            ("purpose", self.purpose),
            ("decision_id", self.decision_id),
            ("policy_revision", self.policy_revision),
            ("reused_decision_id", self.reused_decision_id),
        ):
            if value is not None and not isinstance(value, str):
                raise InvalidEntry(f"{name} must be a string or null")
        for name, values in (("fields", self.fields), ("reasons", self.reasons)):
            if type(values) is not list and (
                not isinstance(values, Sequence) or isinstance(values, str)
            ):
                raise InvalidEntry(f"{name} must be a list of strings")
            for v in values:
                if type(v) is not str and not isinstance(v, str):
                    raise InvalidEntry(f"{name} must be a list of strings")
        basis = self.legal_basis
        if basis is not None and type(basis) is not dict and not isinstance(basis, Mapping):
            raise InvalidEntry("legal_basis must be an object or null")
        order = self.court_order
        if order is not None and (
            not isinstance(order, Mapping)
            or order.keys() != _ORDER_KEYS
            or not isinstance(order["reference"], str)
            or not isinstance(order["embargo_until_ns"], str)
            or not order["embargo_until_ns"].isdigit()
        ):
            raise InvalidEntry(
                "court_order must have exactly a reference and embargo_until_ns, "
                "the latter a decimal string"
            )

    @property
    def embargo_until_ns(self) -> int | None:
        """Until when the person's own view omits this entry (None: it never does)."""
        return int(self.court_order["embargo_until_ns"]) if self.court_order else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form. ``time_ns`` is a decimal string: RFC 8785 (I-JSON, RFC 7493 §2.2)
        only admits integers up to 2^53, and nanoseconds since 1970 are ~2^60."""
        data = {
            "time_ns": str(self.time_ns),
            "actor": dict(self.actor),
            "action": self.action,
            "subject": self.subject,
            "fields": list(self.fields),
            "purpose": self.purpose,
            "legal_basis": dict(self.legal_basis) if self.legal_basis is not None else None,
            "decision_id": self.decision_id,
            "policy_revision": self.policy_revision,
            "outcome": self.outcome,
            "reasons": list(self.reasons),
        }
        if self.reused_decision_id is not None:
            data["reused_decision_id"] = self.reused_decision_id
        if self.court_order is not None:
            data["court_order"] = dict(self.court_order)
        return data

    def canonical(self) -> bytes:
        """RFC 8785 canonical JSON: the exact bytes the leaf hash commits to."""
        # __post_init__ has checked every member to be a string, null or list of strings,
        # under fixed ASCII keys, except what legal_basis holds: when that is plain too, the
        # whole entry is, and the encoder's walk over it can be skipped (it runs for every
        # entry appended).
        plain = self.legal_basis is None or jcs.is_plain(self.legal_basis)
        return canonical_json(self.to_dict(), plain=plain)

    def leaf_hash(self) -> bytes:
        return leaf_hash(self.canonical())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditEntry:
        expected = {
            "time_ns",
            "actor",
            "action",
            "subject",
            "fields",
            "purpose",
            "legal_basis",
            "decision_id",
            "policy_revision",
            "outcome",
            "reasons",
        }
        if set(data) - {"reused_decision_id", "court_order"} != expected:
            raise InvalidEntry("entry keys differ from the audit entry schema")
        actor = data["actor"]
        if not isinstance(actor, Mapping):
            raise InvalidEntry("actor must be an object")
        raw_time = data["time_ns"]
        if not isinstance(raw_time, str) or not raw_time.isdigit():
            raise InvalidEntry("time_ns must be a decimal string in the JSON form")
        return cls(
            time_ns=int(raw_time),
            actor=cast(Actor, dict(actor)),
            action=data["action"],
            subject=data["subject"],
            fields=list(data["fields"]),
            purpose=data["purpose"],
            legal_basis=data["legal_basis"],
            decision_id=data["decision_id"],
            policy_revision=data["policy_revision"],
            outcome=data["outcome"],
            reasons=list(data["reasons"]),
            reused_decision_id=data.get("reused_decision_id"),
            court_order=dict(data["court_order"])
            if isinstance(data.get("court_order"), Mapping)
            else data.get("court_order"),
        )

    @classmethod
    def from_canonical(cls, raw: bytes) -> AuditEntry:
        """Parse stored bytes; rejects any encoding that is not the canonical one."""
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise InvalidEntry("entry is not JSON") from None
        if not isinstance(data, dict):
            raise InvalidEntry("entry is not a JSON object")
        entry = cls.from_dict(data)
        if entry.canonical() != raw:
            raise InvalidEntry("entry is not in RFC 8785 canonical form")
        return entry


@dataclass(frozen=True)
class AppendReceipt:
    """Where an entry landed: its leaf index (a total order across processes) and leaf hash."""

    index: int
    leaf_hash: bytes
