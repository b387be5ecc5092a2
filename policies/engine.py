"""The engine interface every policy engine implements, and what a decision looks like.

The gateway asks one question per request, ``engine.decide(input)``, and gets one
:class:`PolicyResult`. Two engines answer it from the same Rego and data (DESIGN.md "Policy
decisions"): :class:`policies.EmbeddedEngine` (regopy, in process) and
:class:`policies.OpaEngine` (OPA's REST Data API). Any failure to decide raises
:class:`PolicyUnavailable`; callers deny and answer 503 (fail closed).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "DECISION_PATH",
    "POLICY_DIR",
    "PolicyEngine",
    "PolicyError",
    "PolicyResult",
    "PolicyUnavailable",
    "load_data",
    "policy_files",
    "policy_revision",
    "result_from_document",
]

# The directory that holds the Rego modules (this package) and data/ (their static data).
POLICY_DIR = Path(__file__).resolve().parent

# data.sijill.authz.decision, as an OPA Data API path and a regopy bundle entrypoint.
DECISION_PATH = "sijill/authz/decision"


class PolicyUnavailable(Exception):
    """The engine could not decide (error, timeout, unreachable, malformed answer).

    Callers must deny; the message never contains input values.
    """


class PolicyError(Exception):
    """The policy files themselves are unusable (syntax error, clashing data documents)."""


@dataclass(frozen=True)
class PolicyResult:
    """One decision of data.sijill.authz.decision, plus its identity.

    ``fields`` are the released field names (sorted); ``obligations`` maps a released field to
    its masking rule (``year``, ``last2``, ``initial``, ``redact``) or, for ``eligibility``,
    holds the predicate ``{"predicate_only": true, "program", "threshold", "comparison"}``
    (see :attr:`predicate`). ``reasons`` are stable codes, never input values.
    """

    allow: bool
    fields: tuple[str, ...]
    obligations: dict[str, Any]
    reasons: list[str]
    legal_basis: dict[str, Any] | None
    decision_id: str
    policy_revision: str
    # Requested fields an allowed agency read does not release -> the policy's reason code.
    withheld: dict[str, str] = field(default_factory=dict)
    # The earliest instant (ns) after the input's time at which the policy could answer the
    # same input otherwise; None when it states no such bound (the decision is then never
    # reused). ``reused`` is the id of the evaluation this decision repeats, if it does.
    valid_until_ns: int | None = None
    reused: str | None = None
    masks: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        masks = {
            name: rule
            for name, rule in self.obligations.items()
            if name in self.fields and isinstance(rule, str)
        }
        object.__setattr__(self, "masks", masks)

    @property
    def predicate(self) -> dict[str, Any] | None:
        """For a predicate-only answer (eligibility): program, threshold (a decimal string),
        comparison (``lte``: eligible when the index is at or below the threshold)."""
        if self.allow and self.obligations.get("predicate_only") is True:
            return {k: v for k, v in self.obligations.items() if k != "predicate_only"}
        return None

    def document(self) -> dict[str, Any]:
        """The decision document as the policy returned it (for comparisons and the PDP)."""
        return {
            "allow": self.allow,
            "fields": list(self.fields),
            "obligations": dict(self.obligations),
            "reasons": list(self.reasons),
            "legal_basis": None if self.legal_basis is None else dict(self.legal_basis),
            "withheld": dict(self.withheld),
            "valid_until_ns": self.valid_until_ns,
        }


@runtime_checkable
class PolicyEngine(Protocol):
    """What the gateway needs from a policy engine."""

    @property
    def revision(self) -> str:
        """SHA-256 (hex) of the loaded policy and data files."""
        ...

    def decide(self, input: Mapping[str, object]) -> PolicyResult:
        """One decision; raises :class:`PolicyUnavailable` when none can be had."""
        ...

    def ping(self) -> None:
        """Raise when the engine cannot decide (readiness check)."""
        ...


def result_from_document(doc: object, decision_id: str, revision: str) -> PolicyResult:
    """Validate a decision document from any engine; a malformed one is an engine failure.

    A policy bug must not turn into a release: anything but the exact shape raises
    :class:`PolicyUnavailable`, and ``fields``/``obligations``/``legal_basis`` of a denial are
    dropped whatever the document says.
    """
    if not isinstance(doc, dict):
        raise PolicyUnavailable("policy returned no decision document")
    allow = doc.get("allow")
    fields = doc.get("fields")
    obligations = doc.get("obligations")
    reasons = doc.get("reasons")
    basis = doc.get("legal_basis")
    withheld = doc.get("withheld")
    horizon = doc.get("valid_until_ns")
    if (
        not isinstance(allow, bool)
        or not isinstance(fields, list)
        or not all(isinstance(f, str) for f in fields)
        or not isinstance(obligations, dict)
        or not isinstance(reasons, list)
        or not all(isinstance(r, str) for r in reasons)
        or not (basis is None or isinstance(basis, dict))
        or not isinstance(withheld, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in withheld.items())
    ):
        raise PolicyUnavailable("policy returned a malformed decision document")
    if allow and basis is None:
        # Law 09.08 art. 4: no processing without a basis; an allow without one is a bug.
        raise PolicyUnavailable("policy allowed without a legal basis")
    return PolicyResult(
        allow=allow,
        fields=tuple(sorted(fields)) if allow else (),
        obligations=dict(obligations) if allow else {},
        reasons=list(reasons),
        legal_basis=dict(basis) if allow and basis is not None else None,
        decision_id=decision_id,
        policy_revision=revision,
        withheld=dict(withheld) if allow else {},
        # Anything but an exact integer (a float has lost the nanoseconds) is no bound at all.
        valid_until_ns=horizon if type(horizon) is int else None,
    )


def policy_files(policy_dir: Path, data_dir: Path | None = None) -> list[Path]:
    """The files a revision covers: Rego modules (not ``*_test.rego``) and data ``*.json``."""
    data_dir = policy_dir / "data" if data_dir is None else data_dir
    rego = [p for p in sorted(policy_dir.glob("*.rego")) if not p.name.endswith("_test.rego")]
    data = sorted(data_dir.glob("*.json")) if data_dir.is_dir() else []
    return rego + data


def policy_revision(files: Iterable[Path], root: Path | None = None) -> str:
    """SHA-256 over the sorted files: name, length and content of each, so that renaming,
    moving bytes between files or editing any byte changes the revision."""
    digest = hashlib.sha256()
    entries = []
    for path in files:
        name = path.relative_to(root).as_posix() if root is not None else path.name
        entries.append((name, path.read_bytes()))
    for name, content in sorted(entries):
        encoded = name.encode()
        digest.update(len(encoded).to_bytes(4, "big") + encoded)
        digest.update(len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()


def load_data(data_files: Iterable[Path]) -> dict[str, Any]:
    """Merge the data files into one document; each file owns its top-level keys.

    Two files defining the same key would make the result depend on load order (and rego-cpp
    refuses to merge them), so that is an error.
    """
    merged: dict[str, Any] = {}
    for path in data_files:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PolicyError(f"{path.name}: not readable JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise PolicyError(f"{path.name}: a data file must hold a JSON object")
        for key, value in doc.items():
            if key in merged:
                raise PolicyError(f"{path.name}: data key {key!r} is defined twice")
            merged[key] = value
    return merged
