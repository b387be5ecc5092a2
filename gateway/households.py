"""Household changes as an office makes them, over HTTP or from the command line: one path
for both (``gateway/routes/rsu.py`` and ``sijill rsu household``).

Each change is decided by the policy and on the audit log before anything is written (the
enforcement point), then made by the register (``rsu.HouseholdRegister``), which records it in
the household's history and has the vault rescore the household at once. What comes back
carries ids and counts only: an office changes a household, it does not learn its score.
Refusals are problems whose detail names no IDCS and no declared value; a refused change
writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.auth import command_line_office
from gateway.authz import Enforcer
from gateway.problems import Problem
from gateway.questions import Resource
from gateway.services import Services
from rsu import (
    ADD_REASONS,
    REMOVE_REASONS,
    AddReason,
    AlreadyInHousehold,
    ChangedBy,
    DeclarationIn,
    Household,
    MemberIn,
    NotAMember,
    UnknownHousehold,
    UnknownMember,
    problems_of,
)

__all__ = [
    "Changed",
    "ChangedOut",
    "HouseholdIn",
    "MemberAdded",
    "SplitIn",
    "add_member",
    "changed_by",
    "declare",
    "office_enforcer",
    "refusals",
    "remove_member",
    "split",
]

T = TypeVar("T")

# The policy's field names of a household record (policies/data/fields.json) a change writes.
_FIELDS = ["declaration", "household_size", "members", "milieu", "province", "region"]
_MEMBERS = ["declaration", "household_size", "members"]


# -- what an office sends and gets back (the HTTP bodies; the command line reads the same) ------
class HouseholdIn(BaseModel):
    """A household's members (by IDCS, exactly one head) and its declaration."""

    model_config = ConfigDict(extra="forbid")
    members: list[MemberIn] = Field(min_length=1, max_length=100)
    declaration: DeclarationIn


class Counted(BaseModel):
    household_id: str
    size: int
    model_version: str | None


class ChangedOut(BaseModel):
    """Ids and counts only: an office changes a household; it does not learn its score."""

    household_id: str
    size: int = Field(description="Members now (0: dissolved, its last member left)")
    dissolved: bool
    model_version: str | None = Field(description="The model that rescored it")
    new_household: Counted | None = Field(default=None, description="A split's new household")
    decision_id: str


class MemberAdded(BaseModel):
    model_config = ConfigDict(extra="forbid")
    member: MemberIn
    reason: AddReason


class SplitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    members: list[MemberIn] = Field(
        min_length=1, max_length=100, description="Who leaves (one of them heads the new one)"
    )
    declaration: DeclarationIn = Field(description="The new household's declaration")
    new_head: str | None = Field(
        default=None, pattern=r"^[2-9]\d{9}$", description="Who heads the household left behind"
    )


@dataclass(frozen=True)
class Changed:
    """What an office learns of its change: ids, counts, the model that rescored, and the
    decision to quote."""

    household: Household | None  # None: dissolved (its last member left)
    decision_id: str
    new_household: Household | None = None

    def out(self, household_id: str) -> ChangedOut:
        household, new = self.household, self.new_household
        return ChangedOut(
            household_id=household_id,
            size=household.size if household else 0,
            dissolved=household is None,
            model_version=household.model_version if household else None,
            new_household=Counted(
                household_id=new.household_id, size=new.size, model_version=new.model_version
            )
            if new
            else None,
            decision_id=self.decision_id,
        )


def office_enforcer(services: Services, office: str, officer: str | None, action: str) -> Enforcer:
    """The enforcer of a change made at the command line: the named office acts as its token
    would, and the officer, as typed, is named on the record (:func:`command_line_office`)."""
    return Enforcer(
        services=services, principal=command_line_office(services, office, officer), action=action
    )


def changed_by(enforcer: Enforcer) -> ChangedBy:
    """The office (and officer) an enforcer acts for, as the household's history records it."""
    principal = enforcer.principal
    return ChangedBy(office=principal.client_id, sector=principal.sector, officer=principal.actor)


def _change(
    enforcer: Enforcer,
    household_id: str,
    *,
    about: str,
    fields: Sequence[str],
    make: Callable[[ChangedBy], T],
    not_a_member_status: int = 422,
) -> tuple[T, str]:
    """Decide (and record) the change about the member ``about``, then make it."""
    services = enforcer.services
    resource: Resource = {"kind": "household", "fields": sorted(fields)}
    by = changed_by(enforcer)
    try:
        services.households.get(household_id, sector=by.sector)
    except UnknownHousehold:
        # Unknown, or another sector's: one answer, so an office learns nothing of the others.
        enforcer.refuse_unknown(resource=resource, purpose=None, detail=_NO_HOUSEHOLD)
    outcome = enforcer.decide(
        resource=resource, purpose=None, subject_tag=enforcer.subject_tag(about)
    ).require_allowed()
    with refusals(not_a_member_status):
        return make(by), outcome.decision_id


@contextmanager
def refusals(not_a_member_status: int = 422) -> Iterator[None]:
    """The register's refusals as problem documents that name no IDCS and no declared value;
    each means nothing was written."""
    try:
        yield
    except UnknownHousehold:
        raise Problem(404, "not-found", _NO_HOUSEHOLD) from None
    except UnknownMember:
        # Law 72.18: the RSU takes RNP persons only. Which member is not said: the answer
        # must not confirm or deny any one IDCS.
        raise Problem(
            422, "unknown-member",
            "A member is not an active person of the population register; nothing changed.",
        ) from None  # fmt: skip
    except AlreadyInHousehold:
        raise Problem(
            422, "already-in-household",
            "A member already belongs to a household; nothing changed.",
        ) from None  # fmt: skip
    except NotAMember:
        raise Problem(
            not_a_member_status, "not-a-member",
            "The members named are not this household's members; nothing changed.",
        ) from None  # fmt: skip
    except (ValidationError, ValueError) as exc:
        raise Problem(
            422, "validation-error", "The household is not valid; nothing changed.",
            errors=[{"field": f, "reason": r} for f, r in problems_of(exc)],
        ) from None  # fmt: skip


_NO_HOUSEHOLD = "No such household for this office."


def _office_reason(reason: str, allowed: Sequence[str]) -> None:
    if reason not in allowed:
        raise Problem(
            422, "validation-error", "The change is not valid; nothing changed.",
            errors=[{"field": "reason", "reason": f"one of {', '.join(allowed)}"}],
        )  # fmt: skip


def add_member(enforcer: Enforcer, household_id: str, member: MemberIn, reason: str) -> Changed:
    """A birth, a marriage, a return: an RNP person in no other household joins."""
    _office_reason(reason, ADD_REASONS)
    household, decision = _change(
        enforcer, household_id, about=member.idcs, fields=_MEMBERS,
        make=lambda by: enforcer.services.households.add_member(
            household_id, member, reason=reason, by=by
        ),
    )  # fmt: skip
    return Changed(household, decision)


def remove_member(
    enforcer: Enforcer, household_id: str, idcs: str, reason: str, new_head: str | None
) -> Changed:
    """A death, a departure, a marriage out: the member leaves; the last one dissolves it."""
    _office_reason(reason, REMOVE_REASONS)
    households = enforcer.services.households

    def make(by: ChangedBy) -> Household | None:
        households.remove_member(
            idcs, reason=reason, new_head=new_head, household_id=household_id, by=by
        )
        try:
            return households.get(household_id)
        except UnknownHousehold:
            return None  # the last member left: dissolved

    household, decision = _change(
        enforcer, household_id, about=idcs, fields=_MEMBERS, make=make, not_a_member_status=404
    )
    return Changed(household, decision)


def split(
    enforcer: Enforcer,
    household_id: str,
    members: Sequence[MemberIn],
    declaration: DeclarationIn,
    new_head: str | None,
) -> Changed:
    """Named members leave with their own declaration and form a new household."""
    households = enforcer.services.households
    head = next((m.idcs for m in members if m.relation == "head"), members[0].idcs)
    new, decision = _change(
        enforcer, household_id, about=head, fields=_fields(declaration),
        make=lambda by: households.split(
            household_id, members, declaration, new_head=new_head, by=by
        ),
    )  # fmt: skip
    return Changed(households.get(household_id), decision, new_household=new)


def declare(
    enforcer: Enforcer, household_id: str, members: Sequence[MemberIn], declaration: DeclarationIn
) -> Changed:
    """A new declaration of the whole household replaces the last one."""
    head = next((m.idcs for m in members if m.relation == "head"), members[0].idcs)
    household, decision = _change(
        enforcer, household_id, about=head, fields=_fields(declaration),
        make=lambda by: enforcer.services.households.declare(
            household_id, members, declaration, by=by
        ),
    )  # fmt: skip
    return Changed(household, decision)


def _fields(declaration: DeclarationIn) -> list[str]:
    return [*_FIELDS, "address"] if declaration.address else _FIELDS
