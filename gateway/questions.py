"""What the enforcement point (gateway/authz.py) is asked and takes to the policy: the
resource of a request, who asks, the one input document of a decision, the person's context,
and a batch's questions; and which vault records a resolved pseudonym stands for."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NotRequired, Required, TypedDict

from rsu import Subjects
from vault.schema import PERSON

# The records a question about a person reads, each with the policy fields it holds (policy
# name -> vault name): the person's own record, and their household's, whose ``size`` and
# ``area`` an agency asks about as ``household_size`` and ``milieu``.
PERSON_FIELDS: Mapping[str, str] = {name: name for name in PERSON}
HOUSEHOLD_FIELDS: Mapping[str, str] = {"household_size": "size", "milieu": "area"}


def person_records(subjects: Subjects) -> dict[str, Mapping[str, str]]:
    """The vault records behind a resolved pseudonym, for :meth:`Enforcer.decide`: each record
    then gets a decision narrowed to its own fields (least privilege per subject)."""
    records: dict[str, Mapping[str, str]] = {subjects.person: PERSON_FIELDS}
    if subjects.household:
        records[subjects.household] = HOUSEHOLD_FIELDS
    return records


class Resource(TypedDict, total=False):
    """``input.resource`` of policies/README.md: what a request is about."""

    kind: Required[str]
    fields: list[str]
    owner: str  # the IDCS whose own data a citizen asks about
    program: str  # the program an eligibility question names
    requested_by: str  # the officer who asked for an erasure ("" a machine client; four eyes)
    sector: str  # the sector whose pseudonyms a translation concerns
    subject: str  # the keyed tag of the person a law-enforcement query is about


class PolicySubject(TypedDict, total=False):
    """``input.subject`` of policies/README.md: who asks."""

    kind: Required[str]
    client_id: Required[str]
    sector: Required[str]
    scopes: Required[list[str]]
    agency: str
    purposes: list[str]
    idcs: str
    actor: str
    official: str  # an agency's acting official (pseudonymous id), token exchange only
    case: str  # and the case reference they act on


class PolicyInput(TypedDict):
    """The one input document of a decision (DESIGN.md "Policy decisions")."""

    subject: PolicySubject
    action: str
    resource: Resource
    purpose: str | None
    consents: list[Mapping[str, Any]]
    objections: list[Mapping[str, Any]]
    time_ns: int
    # The court order a law-enforcement query names, as the register holds it
    # (policies/court_orders.rego); absent from every other request.
    court_order: NotRequired[Mapping[str, Any] | None]


@dataclass(frozen=True)
class PolicyContext:
    """What the policy needs to know about the person a request concerns, besides the
    request: their audit tag, their consents and their objections (policies/README.md)."""

    subject_tag: str
    consents: list[dict[str, Any]]
    objections: list[dict[str, Any]]


@dataclass(frozen=True)
class Question:
    """One item of a batch request, as :meth:`Enforcer.decide_many` decides it: what it asks,
    and about whom (``context`` None: no such subject for this caller)."""

    resource: Resource
    context: PolicyContext | None = None
    vault_subjects: Sequence[str] | Mapping[str, Mapping[str, str] | None] = ()
