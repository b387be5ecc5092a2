"""The erasure procedure's values and errors (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from audit.entry import Actor

Ground = Literal["court_order", "duplicate_enrolment", "death_after_retention"]
# awaiting_approval → carrying_out → carried_out, or awaiting_approval → refused.
Status = Literal["awaiting_approval", "carrying_out", "carried_out", "refused"]
GROUNDS: tuple[str, ...] = get_args(Ground)
STATUSES: tuple[str, ...] = get_args(Status)
OPEN: tuple[Status, ...] = ("awaiting_approval", "carrying_out")


@dataclass(frozen=True)
class Signed:
    """Who took a step and the audit entry that recorded the decision allowing it.

    ``officer`` is the officer alone ("" for a machine client of an office or the system):
    the approver of a request is checked against its requester's (four eyes)."""

    actor: Actor
    officer: str
    audit_index: int | None

    @property
    def actor_id(self) -> str:
        return self.actor["id"]


@dataclass(frozen=True)
class StepDone:
    step: str
    done_at_ns: int
    count: int
    audit_index: int


@dataclass(frozen=True)
class ErasureRequest:
    id: str
    idcs: str
    ground: Ground
    reference: str
    statement: str | None
    status: Status
    requested_by: str
    requester_officer: str
    requested_at_ns: int
    decided_by: str | None
    decided_at_ns: int | None
    refusal_reason: str | None
    carried_out_at_ns: int | None
    steps: tuple[StepDone, ...] = ()


class ErasureError(Exception):
    """Base of the procedure's errors; messages never carry an IDCS or personal data."""


class ErasureNotFound(ErasureError):
    def __init__(self) -> None:
        super().__init__("No erasure request with this id.")


class ErasurePending(ErasureError):
    def __init__(self) -> None:
        super().__init__("An erasure request for this person is already open.")


class ErasureStateError(ErasureError):
    def __init__(self, status: str, wanted: str) -> None:
        super().__init__(f"The request is {status.replace('_', ' ')}; it cannot be {wanted}.")
        self.status = status


class InvalidErasure(ErasureError):
    """The ground does not hold for this person (``code`` is the problem type)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


class ErasureIncomplete(ErasureError):
    """A step failed: the steps before it stay done and the next carry-out resumes."""

    def __init__(self, step: str) -> None:
        super().__init__(
            f"The erasure stopped at its {step!r} step; carrying it out again finishes it."
        )
        self.step = step
