"""Decision logging with masking, in the spirit of OPA's ``system.log.mask``.

OPA lets a policy erase paths of the input from its decision log. Here the rule is stricter:
the log is built from an allow-list, never from the input. It records the decision id, the
policy revision, the outcome, the reason codes, and the action, purpose, sector and field
*names* only when they belong to the vocabulary of the loaded data (action catalogue,
processing registry, field catalogue). Anything else a client sent, which might be a name, a
CNIE or an IDCS typed into the wrong box, appears as ``"<unlisted>"`` (Law 09.08 art. 23:
security of processing; logs are a classic leak).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from policies.engine import PolicyResult

__all__ = ["UNLISTED", "DecisionLog"]

UNLISTED = "<unlisted>"
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_KINDS = frozenset({"agency", "office", "citizen", "auditor", "system", "law_enforcement"})


class DecisionLog:
    """Writes one structured record per decision to the ``sijill.policy.decisions`` logger."""

    def __init__(self, data: Mapping[str, Any], logger: logging.Logger | None = None) -> None:
        self._logger = logger or logging.getLogger("sijill.policy.decisions")
        self.update_vocabulary(data)

    def update_vocabulary(self, data: Mapping[str, Any]) -> None:
        """Re-read the vocabulary after a policy reload."""
        actions = data.get("actions") or {}
        registry = data.get("registry") or {}
        fields = data.get("fields") or {}
        sectors: set[str] = set()
        agencies: set[str] = set()
        if isinstance(registry, Mapping):
            for entries in registry.values():
                for entry in entries if isinstance(entries, list) else []:
                    if isinstance(entry, Mapping) and isinstance(entry.get("sector"), str):
                        sectors.add(entry["sector"])
                    if isinstance(entry, Mapping) and isinstance(entry.get("agencies"), list):
                        agencies.update(a for a in entry["agencies"] if isinstance(a, str))
        self._actions = frozenset(actions) if isinstance(actions, Mapping) else frozenset()
        self._purposes = frozenset(registry) if isinstance(registry, Mapping) else frozenset()
        self._fields = frozenset(fields) if isinstance(fields, Mapping) else frozenset()
        self._sectors = frozenset(sectors)
        self._agencies = frozenset(agencies)

    @staticmethod
    def _listed(value: object, vocabulary: frozenset[str]) -> str | None:
        if value is None:
            return None
        return value if isinstance(value, str) and value in vocabulary else UNLISTED

    def _field_names(self, names: Iterable[object]) -> list[str]:
        return sorted({n if isinstance(n, str) and n in self._fields else UNLISTED for n in names})

    def record(
        self, input: Mapping[str, Any], result: PolicyResult, duration_s: float
    ) -> dict[str, Any]:
        """Build the masked record, log it, and return it (tests read it)."""
        subject = input.get("subject")
        subject = subject if isinstance(subject, Mapping) else {}
        resource = input.get("resource")
        resource = resource if isinstance(resource, Mapping) else {}
        requested = resource.get("fields")
        kind = subject.get("kind")
        record = {
            "decision_id": result.decision_id,
            "policy_revision": result.policy_revision,
            "outcome": "allow" if result.allow else "deny",
            "reasons": [r if _CODE.match(r) else UNLISTED for r in result.reasons],
            "action": self._listed(input.get("action"), self._actions),
            "purpose": self._listed(input.get("purpose"), self._purposes),
            "subject_kind": kind if isinstance(kind, str) and kind in _KINDS else UNLISTED,
            "sector": self._listed(subject.get("sector"), self._sectors),
            # Who asked, when it is an agency of the processing registry.
            "agency": self._listed(subject.get("agency"), self._agencies),
            "requested": self._field_names(requested if isinstance(requested, list) else []),
            "released": self._field_names(result.fields),
            "legal_basis_type": (result.legal_basis or {}).get("type"),
            "duration_ms": round(duration_s * 1000, 3),
        }
        if self._logger.isEnabledFor(logging.INFO):
            self._logger.info("policy decision", extra={"decision": record})
        return record

    def failure(self, input: Mapping[str, Any], error: str) -> dict[str, Any]:
        """A decision that could not be made (the caller denies)."""
        subject = input.get("subject")
        subject = subject if isinstance(subject, Mapping) else {}
        record = {
            "outcome": "error",
            "error": error if _CODE.match(error) else UNLISTED,
            "action": self._listed(input.get("action"), self._actions),
            "purpose": self._listed(input.get("purpose"), self._purposes),
            "agency": self._listed(subject.get("agency"), self._agencies),
        }
        self._logger.warning("policy decision failed", extra={"decision": record})
        return record
