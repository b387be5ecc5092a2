"""A typed, validated view of the processing registry in ``data/registry.json``.

Each entry is one declaration to the CNDP (Law 09.08 art. 12): who (sector, agencies)
processes which fields, for which purpose, on which legal basis, for how long. The Rego
policies read the same file as data; this view serves the Python side (consent validation,
``sijill registry``) so that both read one source.
"""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).with_name("data")
BASIS_TYPES = {"law", "consent", "contract", "public_task", "legitimate_interest", "vital_interest"}
# Law 09.08 does not fix a term for consent; the registry may set a shorter one per purpose.
DEFAULT_CONSENT_MAX_DAYS = 365


class RegistryError(ValueError):
    """The registry file is inconsistent; the message names the entry and the problem."""


@dataclass(frozen=True)
class RegistryEntry:
    id: str
    purpose: str
    sector: str
    agencies: tuple[str, ...]
    basis_type: str
    basis_ref: str
    fields: tuple[str, ...]
    actions: tuple[str, ...]
    cndp_declaration: str
    valid_from: int
    valid_until: int | None
    retention: str
    description: str = ""
    consent_max_days: int = DEFAULT_CONSENT_MAX_DAYS
    programs: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def legal_basis(self) -> dict[str, str]:
        return {"type": self.basis_type, "ref": self.basis_ref}

    def in_force(self, now_ns: int) -> bool:
        return self.valid_from <= now_ns and (self.valid_until is None or now_ns < self.valid_until)


class ProcessingRegistry:
    def __init__(self, entries: list[RegistryEntry], known_fields: set[str]) -> None:
        self.entries = entries
        self.known_fields = known_fields

    @classmethod
    def load(cls, data_dir: Path = DATA_DIR) -> ProcessingRegistry:
        registry = json.loads((data_dir / "registry.json").read_text(encoding="utf-8"))
        fields_doc = json.loads((data_dir / "fields.json").read_text(encoding="utf-8"))
        known = set(fields_doc.get("fields", {}))
        entries = []
        for purpose, items in registry.get("registry", {}).items():
            for raw in items:
                entries.append(_entry(purpose, raw))
        out = cls(entries, known)
        problems = out.validate()
        if problems:
            raise RegistryError(problems[0])
        return out

    def validate(self) -> list[str]:
        problems = []
        ids = [e.id for e in self.entries]
        for dup in sorted({i for i in ids if ids.count(i) > 1}):
            problems.append(f"entry {dup}: id used twice")
        for e in self.entries:
            if e.basis_type not in BASIS_TYPES:
                problems.append(f"entry {e.id}: unknown legal basis type {e.basis_type!r}")
            if not e.basis_ref:
                problems.append(f"entry {e.id}: legal basis names no text")
            if not e.cndp_declaration:
                problems.append(f"entry {e.id}: no CNDP declaration or authorisation number")
            unknown = sorted(set(e.fields) - self.known_fields) if self.known_fields else []
            if unknown:
                problems.append(f"entry {e.id}: unknown fields {', '.join(unknown)}")
            if e.valid_until is not None and e.valid_until <= e.valid_from:
                problems.append(f"entry {e.id}: valid_until is not after valid_from")
            if e.consent_max_days <= 0:
                problems.append(f"entry {e.id}: consent_max_days must be positive")
        return problems

    @property
    def purposes(self) -> frozenset[str]:
        return frozenset(e.purpose for e in self.entries)

    def __iter__(self) -> Iterator[RegistryEntry]:
        return iter(self.entries)

    def for_purpose(self, purpose: str, now_ns: int) -> list[RegistryEntry]:
        return [e for e in self.entries if e.purpose == purpose and e.in_force(now_ns)]

    def get(self, entry_id: str) -> RegistryEntry | None:
        return next((e for e in self.entries if e.id == entry_id), None)

    def declared_fields(
        self, *, purpose: str | None, sector: str, agency: str, action: str, now_ns: int
    ) -> frozenset[str]:
        """Every field a declaration in force lets ``agency`` (of ``sector``) process for
        ``purpose`` through ``action``: the most any decision for that request may release
        (Law 09.08 art. 12: nothing beyond what was declared to the CNDP), whatever an engine
        answers. Empty when no declaration matches."""
        if purpose is None:
            return frozenset()
        return frozenset(
            f
            for e in self.for_purpose(purpose, now_ns)
            if e.sector == sector and agency in e.agencies and action in e.actions
            for f in e.fields
        )


def _entry(purpose: str, raw: Mapping[str, Any]) -> RegistryEntry:
    try:
        basis = raw["legal_basis"]
        return RegistryEntry(
            id=str(raw["id"]),
            purpose=purpose,
            sector=str(raw["sector"]),
            agencies=tuple(raw.get("agencies", ())),
            basis_type=str(basis["type"]),
            basis_ref=str(basis.get("ref", "")),
            fields=tuple(raw.get("fields", ())),
            actions=tuple(raw.get("actions", ())),
            cndp_declaration=str(raw.get("cndp_declaration", "")),
            valid_from=int(raw.get("valid_from", 0)),
            valid_until=None if raw.get("valid_until") is None else int(raw["valid_until"]),
            retention=str(raw.get("retention", "")),
            description=str(raw.get("description", "")),
            consent_max_days=int(raw.get("consent_max_days", DEFAULT_CONSENT_MAX_DAYS)),
            programs=tuple(raw.get("programs", ())),
            raw=raw,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RegistryError(f"registry entry for purpose {purpose!r} is malformed: {exc}") from None


def action_scope(action: str, data_dir: Path = DATA_DIR) -> str:
    """The OAuth scope ``data/actions.json`` requires for ``action`` (one source for the
    policy's check and the gateway's RFC 6750 ``insufficient_scope`` answer)."""
    actions = json.loads((data_dir / "actions.json").read_text(encoding="utf-8"))["actions"]
    try:
        return str(actions[action]["scope"])
    except KeyError:
        raise RegistryError(f"unknown action {action!r}") from None


def action_legal_basis(action: str, data_dir: Path = DATA_DIR) -> dict[str, str] | None:
    """The legal basis ``data/actions.json`` names for an action the law itself grounds (an
    office's enrolment, say): what an audit entry of that action records when no policy
    decision stands between (a bulk import)."""
    actions = json.loads((data_dir / "actions.json").read_text(encoding="utf-8"))["actions"]
    try:
        basis = actions[action].get("legal_basis")
    except KeyError:
        raise RegistryError(f"unknown action {action!r}") from None
    return None if basis is None else {str(k): str(v) for k, v in basis.items()}


def registry_bound_actions(data_dir: Path = DATA_DIR) -> frozenset[str]:
    """The actions whose basis is the processing registry (``"basis": "registry"`` in
    ``data/actions.json``): an agency's, whose releases the registry bounds."""
    actions = json.loads((data_dir / "actions.json").read_text(encoding="utf-8"))["actions"]
    return frozenset(name for name, spec in actions.items() if spec.get("basis") == "registry")


def field_catalogue(data_dir: Path = DATA_DIR) -> frozenset[str]:
    """Every field name the policies know (``data/fields.json``)."""
    doc = json.loads((data_dir / "fields.json").read_text(encoding="utf-8"))
    return frozenset(doc.get("fields", {}))


# -- retention ------------------------------------------------------------------------------

_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?$")


@dataclass(frozen=True)
class OwnRetention:
    """The retention of a record the controller keeps for its own processing (the register,
    its corrections, its imports, its notifications), from ``data/retention.json``: the
    registry's entries say the agencies' purposes, these say the controller's."""

    id: str
    items: str
    since: str
    retention: str
    ref: str


def own_retention(data_dir: Path = DATA_DIR) -> dict[str, OwnRetention]:
    raw = json.loads((data_dir / "retention.json").read_text(encoding="utf-8"))["retention"]
    out = {}
    for key, item in raw.items():
        out[key] = OwnRetention(key, item["items"], item["since"], item["retention"], item["ref"])
        retention_cutoff(out[key].retention, datetime.now(UTC))  # refuses a bad duration
    return out


def retention_cutoff(retention: str, now: datetime) -> datetime:
    """The moment ``retention`` (an ISO 8601 duration of years, months and days, as the
    registry writes it: ``P5Y``, ``P90D``) before ``now``: what ended before it is due."""
    match = _DURATION.match(retention)
    if match is None or retention == "P":
        raise RegistryError(f"retention {retention!r} is not a duration of years, months, days")
    years, months, days = (int(g or 0) for g in match.groups())
    total = now.year * 12 + (now.month - 1) - years * 12 - months
    year, month = divmod(total, 12)
    # The same day of the month, or the month's last day (29 February → 28 February).
    day = min(now.day, calendar.monthrange(year, month + 1)[1])
    return now.replace(year=year, month=month + 1, day=day) - timedelta(days=days)
