"""rsu: the Unified Social Register (RSU, Law 72.18) — households of RNP persons, their
declarations, and the synthetic households of demos, tests and benchmarks.

Owns: the household register (``households``: registration, membership changes, each one
rescored and recorded in the household's history, ``history``; the note of which model scored a
household, :meth:`HouseholdRegister.record_scores`, the only writer of that note), the
declaration and its validation (``declarations``), the household, membership and history
tables (``tables``), the one resolution of an agency's sector pseudonym to the person's and
household's records (``subjects``), and synthetic declarations (``synthetic``).

May import: ``identity`` (the population register: members must be active RNP persons; the
pseudonym lookup), ``vault`` (the ``Vault`` is passed in, typed structurally; ``ModelSet``,
``ScoreEvent``), ``storekit`` (SQL plumbing).

Must never: import ``gateway``; read a declaration back or see a score (the vault scores, this
room notes only the model version); hold personal data in clear (the declaration goes to the
vault); put an IDCS or a declared value in an error message.
"""

from rsu.declarations import DeclarationIn, MemberIn, problems_of, validate_members
from rsu.history import (
    ADD_REASONS,
    REMOVE_REASONS,
    AddReason,
    ChangedBy,
    EventKind,
    HouseholdEvent,
    RemoveReason,
)
from rsu.households import (
    AlreadyInHousehold,
    Household,
    HouseholdError,
    HouseholdRegister,
    HouseholdVault,
    NotAMember,
    ScoreListener,
    UnknownHousehold,
    UnknownMember,
)
from rsu.subjects import Subjects, resolve_many, resolve_subjects

__all__ = [
    "ADD_REASONS",
    "REMOVE_REASONS",
    "AddReason",
    "AlreadyInHousehold",
    "ChangedBy",
    "DeclarationIn",
    "EventKind",
    "Household",
    "HouseholdError",
    "HouseholdEvent",
    "HouseholdRegister",
    "HouseholdVault",
    "MemberIn",
    "NotAMember",
    "RemoveReason",
    "ScoreListener",
    "Subjects",
    "UnknownHousehold",
    "UnknownMember",
    "problems_of",
    "resolve_many",
    "resolve_subjects",
    "validate_members",
]
