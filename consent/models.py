"""The consent artefact and the objection, as values."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class ConsentStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"
    # Replaced by a newer artefact (a revocation or a change): no longer current itself.
    SUPERSEDED = "SUPERSEDED"


class CollectionMethod(enum.StrEnum):
    PORTAL = "portal"
    # At a counter, confirmed by the citizen's own second factor.
    COUNTER = "counter"


@dataclass(frozen=True)
class Consent:
    id: str
    subject: str
    recipient: str
    sector: str
    purpose: str
    registry_entry: str
    fields: tuple[str, ...]
    status: ConsentStatus
    method: str
    granted_at_ns: int
    expires_at_ns: int
    replaces: str | None
    receipt: str
    # What this artefact recorded when it was made (ACTIVE for a grant, REVOKED for a
    # withdrawal); ``status`` is its standing now.
    recorded: ConsentStatus | None = None

    @property
    def event(self) -> ConsentStatus:
        return self.recorded or self.status

    def as_policy_input(self) -> dict[str, Any]:
        """The shape the Rego policies read under ``input.consents``."""
        return {
            "id": self.id,
            "purpose": self.purpose,
            "fields": list(self.fields),
            "expires_at": self.expires_at_ns,
            "recipient": self.recipient,
            "revoked": self.status is not ConsentStatus.ACTIVE,
        }

    def as_public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "recipient": self.recipient,
            "sector": self.sector,
            "purpose": self.purpose,
            "fields": list(self.fields),
            "status": self.status.value,
            "collection_method": self.method,
            "granted_at_ns": self.granted_at_ns,
            "expires_at_ns": self.expires_at_ns,
            "replaces": self.replaces,
            "receipt": self.receipt,
        }


@dataclass(frozen=True)
class Objection:
    id: str
    subject: str
    purpose: str | None
    sector: str | None
    reason: str
    created_at_ns: int

    def as_policy_input(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        if self.purpose is not None:
            out["purpose"] = self.purpose
        if self.sector is not None:
            out["sector"] = self.sector
        return out

    def as_public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "purpose": self.purpose,
            "sector": self.sector,
            "reason": self.reason,
            "created_at_ns": self.created_at_ns,
        }


class ReviewStatus(enum.StrEnum):
    PENDING = "pending"
    # The officer found the automated result right.
    CONFIRMED = "confirmed"
    # The declaration was corrected and the household rescored.
    CORRECTED = "corrected"
    # A human decision on eligibility replaces the automated one.
    OVERRIDDEN = "overridden"


@dataclass(frozen=True)
class Review:
    """A request for human review of an automated result, as the office's desk sees it."""

    id: str
    subject: str
    household_id: str
    created_at_ns: int
    due_at_ns: int
    status: ReviewStatus
    decided_at_ns: int | None
    decided_by: str | None
    reason_subject: str | None

    def as_public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "about": "rsu_score",
            "status": self.status.value,
            "created_at_ns": self.created_at_ns,
            "due_at_ns": self.due_at_ns,
            "decided_at_ns": self.decided_at_ns,
        }
