"""The breach register's values: a report, an assessment, a breach and its steps.

A breach moves through :data:`STATUSES` in order; the CNDP must hear of it within
:data:`CNDP_DEADLINE_NS` of its detection (GDPR art. 33(1), which Law 09.08 lacks and the
CNDP recommends), and a breach still unnotified past that moment is overdue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

HOUR_NS = 3600 * 1_000_000_000
CNDP_DEADLINE_NS = 72 * HOUR_NS

Status = Literal["registered", "assessed", "cndp_notified", "persons_notified", "closed"]
STATUSES: tuple[Status, ...] = (
    "registered",
    "assessed",
    "cndp_notified",
    "persons_notified",
    "closed",
)
# Statuses in which the CNDP has not been notified yet: such a breach past its deadline is
# overdue.
UNNOTIFIED: tuple[Status, ...] = ("registered", "assessed")

# GDPR art. 33(1) and 34(1): "unlikely to result in a risk", a risk, or a high risk to the
# persons; only a high risk obliges the controller to tell the persons themselves.
Risk = Literal["unlikely", "risk", "high"]
ASSESSMENTS: tuple[Risk, ...] = ("unlikely", "risk", "high")

StepName = Literal["register", "assess", "notify_cndp", "notify_persons", "close"]


class BreachError(Exception):
    """A breach step that cannot be taken; ``code`` is stable, the message safe to show."""

    code = "breach-error"


class BreachNotFound(BreachError):
    code = "breach-not-found"


class BreachStateError(BreachError):
    """The step does not follow from the breach's current status."""

    code = "breach-state"

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status


class InvalidBreach(BreachError):
    """The report or step is not valid (a time in the future, a missing reason)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class BreachReport:
    """What the officer knows when registering (GDPR art. 33(3)(a), (c), (d))."""

    title: str
    description: str
    detected_at_ns: int
    occurred_at_ns: int | None
    person_categories: tuple[str, ...]
    persons_affected: int
    record_categories: tuple[str, ...]
    records_affected: int
    likely_consequences: str
    measures: str


@dataclass(frozen=True)
class Assessment:
    """The risk to the persons, with the consequences and measures as now understood."""

    risk: Risk
    likely_consequences: str | None = None
    measures: str | None = None


@dataclass(frozen=True)
class Step:
    """The audit entry that recorded the policy decision allowing one step, and who acted.

    The route decides and appends it before the register changes, so each step points to its
    own entry in the log (and the log holds no breach detail: only who, which step, when)."""

    actor: str
    audit_index: int
    decision_id: str


@dataclass(frozen=True)
class StepRecord:
    step: str
    at_ns: int
    actor: str
    audit_index: int
    decision_id: str


@dataclass(frozen=True)
class Breach:
    id: str
    title: str
    description: str
    occurred_at_ns: int | None
    detected_at_ns: int
    registered_at_ns: int
    person_categories: tuple[str, ...]
    persons_affected: int
    record_categories: tuple[str, ...]
    records_affected: int
    likely_consequences: str
    measures: str
    risk: Risk | None
    status: Status
    cndp_deadline_ns: int
    cndp_notified_at_ns: int | None
    cndp_notification: str | None
    delay_reason: str | None
    persons_notified: int
    closed_at_ns: int | None
    closure_summary: str | None
    steps: tuple[StepRecord, ...] = field(default=())

    def overdue(self, now_ns: int) -> bool:
        """Past the 72 hours with the CNDP not yet notified."""
        return self.status in UNNOTIFIED and now_ns > self.cndp_deadline_ns

    @property
    def notified_late(self) -> bool | None:
        """Whether the CNDP notification came after the deadline (None: not notified yet)."""
        if self.cndp_notified_at_ns is None:
            return None
        return self.cndp_notified_at_ns > self.cndp_deadline_ns

    @property
    def persons_notice_required(self) -> bool | None:
        """GDPR art. 34(1): the persons must be told of a breach of high risk to them."""
        return None if self.risk is None else self.risk == "high"


@dataclass(frozen=True)
class Notices:
    """What one batch of notices to persons did."""

    notified: int
    already_notified: int
    total: int
