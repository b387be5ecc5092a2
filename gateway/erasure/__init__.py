"""The erasure procedure (Law 09.08 art. 8; Law 72.18 art. 8): an office asks for a person's
erasure on a legal ground, a second named officer approves or refuses it (four eyes), and the
approved erasure is carried out step by step, each step audited and recorded so that a
carry-out interrupted by a crash resumes where it stopped.

Owns the request and step tables, the states of a request and the carry-out. The steps
themselves are the rooms' own operations (the register's shredding, the RSU's membership
change, the consent room's forgetting, the sign-in's withdrawal), listed in
:mod:`gateway.erasure.steps`.

May import: the standard library, SQLAlchemy, ``audit`` (the step entries), ``identity``,
``rsu``, ``consent``, ``policies.registry`` (the legal basis) and ``gateway.notices``; never
``gateway.services`` or a route (they import this room). It never decides access (the route
asks the policy and hands each decision's audit entry to the desk) and never writes a
person's data, or their IDCS, into an audit entry (their keyed tag only).
"""

from gateway.erasure.models import (
    GROUNDS,
    OPEN,
    STATUSES,
    ErasureError,
    ErasureIncomplete,
    ErasureNotFound,
    ErasurePending,
    ErasureRequest,
    ErasureStateError,
    Ground,
    InvalidErasure,
    Signed,
    Status,
    StepDone,
)
from gateway.erasure.service import STEP_ACTION, ErasureDesk, StepFn
from gateway.erasure.steps import STEP_NAMES, person_steps

__all__ = [
    "GROUNDS",
    "OPEN",
    "STATUSES",
    "STEP_ACTION",
    "STEP_NAMES",
    "ErasureDesk",
    "ErasureError",
    "ErasureIncomplete",
    "ErasureNotFound",
    "ErasurePending",
    "ErasureRequest",
    "ErasureStateError",
    "Ground",
    "InvalidErasure",
    "Signed",
    "Status",
    "StepDone",
    "StepFn",
    "person_steps",
]
