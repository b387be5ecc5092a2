"""The policy enforcement point: every route that touches personal data goes through here.

For one request: build the policy input → ask the engine for one decision → bound what it
released by the request and the processing registry → append one audit entry, durably → only
then, if allowed, seal a :class:`vault.Decision` that lets the vault reveal exactly the released
fields. Any failure on that path denies (fail closed): no decision, no audit entry, no data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Required, TypedDict

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from starlette.routing import BaseRoute

from audit import AppendReceipt, AuditEntry, AuditUnavailable
from audit.entry import Actor
from audit.entry import Outcome as EntryOutcome
from gateway.auth import Principal, PrincipalKind, require_principal
from gateway.problems import Problem
from gateway.services import Services, get_services
from identity import UnknownPerson
from policies import PolicyResult, PolicyUnavailable
from policies.decision_log import UNLISTED
from policies.registry import action_scope, field_catalogue, registry_bound_actions
from rsu import Subjects
from vault import Decision
from vault.schema import PERSON

log = logging.getLogger("sijill.authz")

# Marks a dependency as the route's policy enforcement; the route-walk test looks for it.
MEDIATED_ATTR = "__sijill_mediated_action__"

# Actions whose releases the processing registry bounds (an agency's), and the field names an
# anomaly record may name (anything else an engine invents is logged as UNLISTED).
REGISTRY_ACTIONS = registry_bound_actions()
CATALOGUE = field_catalogue()


@dataclass(frozen=True)
class Outcome:
    """What the enforcement point decided, and the proof it was recorded first.

    ``decisions`` holds one sealed decision per vault subject the request concerns (a person
    and their household, say): one policy decision and one audit entry, several capabilities,
    each bound to its own subject.
    """

    result: PolicyResult
    receipt: AppendReceipt
    decisions: Mapping[str, Decision] = field(default_factory=dict)
    # vault subject -> (policy field -> vault field) of each record :meth:`Enforcer.reveal`
    # reads; empty when the decision was asked without naming the records' fields.
    records: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def allowed(self) -> bool:
        return self.result.allow

    @property
    def decision_id(self) -> str:
        return self.result.decision_id

    def denied(self) -> Problem:
        """The 403 a refused decision answers with: stable reason codes and the decision id
        the caller can quote to the CNDP, never input values."""
        return Problem(
            403,
            "denied",
            "The policy does not allow this request.",
            reasons=self.result.reasons,
            decision_id=self.decision_id,
        )

    def require_allowed(self) -> Outcome:
        if not self.allowed:
            raise self.denied()
        return self


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


class PolicyInput(TypedDict):
    """The one input document of a decision (DESIGN.md "Policy decisions")."""

    subject: PolicySubject
    action: str
    resource: Resource
    purpose: str | None
    consents: list[Mapping[str, Any]]
    objections: list[Mapping[str, Any]]
    time_ns: int


@dataclass(frozen=True)
class PolicyContext:
    """What the policy needs to know about the person a request concerns, besides the
    request: their audit tag, their consents and their objections (policies/README.md)."""

    subject_tag: str
    consents: list[dict[str, Any]]
    objections: list[dict[str, Any]]


@dataclass
class Enforcer:
    """Bound to one request's principal and action; routes call :meth:`decide` once, then
    :meth:`reveal` what it released."""

    services: Services
    principal: Principal
    action: str
    _tags: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def subject_tag(self, idcs: str) -> str:
        """The keyed hash under which a person's audit entries are filed: of the IDCS, which
        stays when a rectification gives the person a new vault record. Computed once a
        request (the entry's subject and a citizen's actor id are the same tag)."""
        tag = self._tags.get(idcs)
        if tag is None:
            tag = self._tags[idcs] = self.services.vault.subject_tag(idcs)
        return tag

    def context(self, idcs: str) -> PolicyContext:
        """The person's tag, consents and objections, read in one round trip."""
        consents, objections = self.services.consents.policy_context(idcs)
        return PolicyContext(self.subject_tag(idcs), consents, objections)

    def reveal(self, outcome: Outcome, fields: Iterable[str]) -> dict[str, object]:
        """The values of ``fields`` the decision released, each read from the record that
        holds it (:attr:`Outcome.records`) with that record's own sealed decision; a field
        nobody released, or that no record holds, is simply absent."""
        released = set(outcome.result.fields)
        asked = set(fields) & released
        values: dict[str, object] = {}
        for subject, names in outcome.records.items():
            wanted = sorted(f for f in asked if f in names)
            if not wanted:
                continue
            found = self.services.vault.reveal(
                subject, [names[f] for f in wanted], outcome.decisions[subject]
            )
            values.update({f: found[names[f]] for f in wanted if names[f] in found})
        return values

    def policy_input(
        self,
        resource: Resource,
        purpose: str | None,
        consents: Sequence[Mapping[str, Any]],
        objections: Sequence[Mapping[str, Any]],
        now_ns: int,
    ) -> PolicyInput:
        return {
            "subject": policy_subject(self.principal),
            "action": self.action,
            "resource": resource.copy(),
            "purpose": purpose,
            "consents": list(consents),
            "objections": list(objections),
            "time_ns": now_ns,
        }

    def decide(
        self,
        *,
        resource: Resource,
        purpose: str | None,
        vault_subjects: Sequence[str] | Mapping[str, Mapping[str, str] | None] = (),
        subject_tag: str | None = None,
        consents: Sequence[Mapping[str, Any]] = (),
        objections: Sequence[Mapping[str, Any]] = (),
    ) -> Outcome:
        """One decision, recorded before anything is released.

        ``vault_subjects`` are the vault ids of the person (and household) concerned: sealed
        decisions are issued for them only. Given as a mapping, each subject's decision is
        narrowed to the released fields its map names (policy field -> vault field): a
        household's decision then releases ``household_size`` as the vault's ``size`` and no
        person field at all, and a record none of whose fields is released gets no decision;
        ``subject_tag`` is the person's keyed hash for
        the audit entry (never the IDCS).
        """
        now_ns = time.time_ns()
        fields = [str(f) for f in resource.get("fields", ())]
        result = self._ask(resource, purpose, consents, objections, now_ns, subject_tag)
        result = self._bounded(result, fields, purpose, now_ns)
        outcome: EntryOutcome = "allow" if result.allow else "deny"
        entry = self._entry(
            now_ns,
            subject_tag,
            list(result.fields) if result.allow else fields,
            purpose,
            result,
            outcome,
            list(result.reasons),
        )
        receipt = self._append(entry, must=True)
        assert receipt is not None
        decisions = {}
        if result.allow:
            scoped = (
                dict(vault_subjects)
                if isinstance(vault_subjects, Mapping)
                else dict.fromkeys(vault_subjects)
            )
            for subject, names in scoped.items():
                narrowed = result if names is None else _scoped(result, names)
                if names is not None and not narrowed.fields:
                    continue  # nothing of this record is released: no capability for it
                decisions[subject] = self.services.decision_issuer.seal(
                    narrowed,
                    subject=subject,
                    action=self.action,
                    purpose=purpose or "",
                    audit_index=receipt.index,
                    requested=fields if names is None else [names[f] for f in fields if f in names],
                )
        records = (
            {s: names for s, names in vault_subjects.items() if names is not None}
            if isinstance(vault_subjects, Mapping)
            else {}
        )
        return Outcome(result=result, receipt=receipt, decisions=decisions, records=records)

    def _bounded(
        self, result: PolicyResult, requested: Sequence[str], purpose: str | None, now_ns: int
    ) -> PolicyResult:
        """Release = decision ∩ request ∩ registry. The engine may be remote, misconfigured
        or spoofed: whatever it released beyond the fields asked for, or beyond what the
        agency declared to the CNDP for this purpose (Law 09.08 art. 12), is dropped here,
        logged as a policy anomaly and counted."""
        if not result.allow:
            return result
        bound = set(requested)
        if self.action in REGISTRY_ACTIONS:
            bound &= self.services.registry.declared_fields(
                purpose=purpose,
                sector=self.principal.sector,
                agency=self.principal.client_id,
                action=self.action,
                now_ns=now_ns,
            )
        dropped = {f for f in result.fields if f not in bound}
        if not dropped:
            return result
        self.services.metrics.policy_anomalies.labels(action=self.action).inc()
        log.warning(
            "policy anomaly: the engine released fields beyond request and registry; dropped",
            extra={
                "anomaly": {
                    "kind": "release_beyond_bound",
                    "action": self.action,
                    "purpose": purpose if purpose in self.services.registry.purposes else UNLISTED,
                    "decision_id": result.decision_id,
                    "policy_revision": result.policy_revision,
                    # Names only, and only names of the catalogue: an engine's invented
                    # "field" could carry anything.
                    "dropped": sorted({f if f in CATALOGUE else UNLISTED for f in dropped}),
                }
            },
        )
        return replace(
            result,
            fields=tuple(f for f in result.fields if f in bound),
            obligations={k: v for k, v in result.obligations.items() if k not in dropped},
        )

    def _ask(
        self,
        resource: Resource,
        purpose: str | None,
        consents: Sequence[Mapping[str, Any]],
        objections: Sequence[Mapping[str, Any]],
        now_ns: int,
        subject_tag: str | None,
    ) -> PolicyResult:
        """The engine's decision on this request; 503 (and an error entry) when it has none."""
        doc = self.policy_input(resource, purpose, consents, objections, now_ns)
        try:
            return self.services.policy.decide(doc)
        except PolicyUnavailable:
            fields = [str(f) for f in resource.get("fields", ())]
            # Deny, and put the failure itself on the record when the log is there.
            self._append(
                self._entry(
                    now_ns, subject_tag, fields, purpose, None, "error", ["policy_unavailable"]
                ),
                must=False,
            )
            raise Problem(
                503,
                "policy-unavailable",
                "The policy engine did not answer; nothing was released.",
                headers={"Retry-After": "5"},
            ) from None

    def refuse_unknown(
        self,
        *,
        resource: Resource,
        purpose: str | None,
        stand_in: PolicyContext | None = None,
    ) -> None:
        """Record a request about a subject that does not exist (or is not the caller's to
        know) and answer 404; the attempt is on the record like any other call.

        ``stand_in`` (the context of a keyed stand-in subject) makes
        the refusal ask the policy about it, as :meth:`decide` would about a person, and
        discard the answer: where a known person's denial answers the same 404, the two then
        cost the same work, so timing does not reveal who is registered."""
        now_ns = time.time_ns()
        if stand_in is not None:
            self._ask(
                resource,
                purpose,
                stand_in.consents,
                stand_in.objections,
                now_ns,
                None,  # a stand-in's tag is no one's: never on the record
            )
        fields = sorted(str(f) for f in resource.get("fields", ()))
        self._append(
            self._entry(now_ns, None, fields, purpose, None, "deny", ["unknown_subject"]),
            must=True,
        )
        raise Problem(404, "not-found", "No such person for this agency.")

    def _entry(
        self,
        now_ns: int,
        subject_tag: str | None,
        fields: list[str],
        purpose: str | None,
        result: PolicyResult | None,
        outcome: EntryOutcome,
        reasons: list[str],
    ) -> AuditEntry:
        return AuditEntry(
            time_ns=now_ns,
            actor=self.actor(),
            action=self.action,
            subject=subject_tag,
            fields=sorted(fields),
            purpose=purpose,
            legal_basis=dict(result.legal_basis) if result and result.legal_basis else None,
            decision_id=result.decision_id if result else None,
            policy_revision=result.policy_revision if result else None,
            outcome=outcome,
            reasons=reasons,
        )

    def actor(self) -> Actor:
        """Who acted, as the audit log records it: never a citizen's IDCS (their keyed tag)."""
        principal = self.principal
        if principal.kind == "citizen":
            return {"kind": "citizen", "id": self.subject_tag(principal.subject), "sector": None}
        actor_id = principal.client_id
        if principal.actor is not None:
            actor_id = f"{principal.client_id}/{principal.actor}"
        return {"kind": principal.kind, "id": actor_id, "sector": principal.sector or None}

    def _append(self, entry: AuditEntry, *, must: bool) -> AppendReceipt | None:
        try:
            return self.services.audit.append(entry)
        except AuditUnavailable:
            log.error("audit append failed", extra={"action": self.action})
            if must:
                raise Problem(
                    503,
                    "audit-unavailable",
                    "The audit log could not record this request; nothing was released.",
                    headers={"Retry-After": "5"},
                ) from None
            return None


def _scoped(result: PolicyResult, names: Mapping[str, str]) -> PolicyResult:
    """The same decision, narrowed to the fields ``names`` maps and renamed as it says."""
    return replace(
        result,
        fields=tuple(sorted(names[f] for f in result.fields if f in names)),
        obligations={names[k]: v for k, v in result.obligations.items() if k in names},
    )


def policy_subject(principal: Principal) -> PolicySubject:
    """The ``input.subject`` document of policies/README.md for this caller."""
    subject: PolicySubject = {
        "kind": principal.kind,
        "client_id": principal.client_id,
        "sector": principal.sector,
        "scopes": sorted(principal.scopes),
    }
    if principal.kind == "agency":
        # An agency's client id is its code in the processing registry (cnss, anam …).
        subject["agency"] = principal.client_id
        subject["purposes"] = sorted(principal.purposes)
    elif principal.kind == "citizen":
        subject["idcs"] = principal.subject
    elif principal.actor is not None:
        subject["actor"] = principal.actor
    return subject


def authorize(
    action: str, *, kinds: Sequence[PrincipalKind], scopes: Sequence[str] | None = None
) -> Callable[..., Awaitable[Enforcer]]:
    """The dependency every personal-data route takes: authenticated principal + enforcer.

    The scope the action needs comes from the policy data (``actions.json``), so the
    gateway's early 403 ``insufficient_scope`` and the policy agree by construction; a route
    that names scopes must name exactly that one (checked when the route is defined).
    """
    needed = (action_scope(action),)
    if scopes is not None and tuple(scopes) != needed:
        raise ValueError(
            f"route for {action!r} names scopes {list(scopes)}, the policy data "
            f"requires {list(needed)}"
        )
    principal_dep = require_principal(kinds=tuple(kinds), scopes=needed)

    async def dependency(
        request: Request,
        principal: Principal = Depends(principal_dep),
        services: Services = Depends(get_services),
    ) -> Enforcer:
        if principal.kind == "agency":
            await services.rate_limiter.check_async(principal.client_id)
        elif principal.kind == "citizen":
            await run_in_threadpool(_serves_citizen, services, principal.subject)
        return Enforcer(services=services, principal=principal, action=action)

    setattr(dependency, MEDIATED_ATTR, action)
    dependency.__name__ = f"authorize_{action}"
    return dependency


# The token id a command-line step records: it has no access token, the sign-in stands for it.
COMMAND_LINE_STEP = "command-line"


def officer_enforcer(
    services: Services, action: str, *, client_id: str, officer: Mapping[str, str] | None
) -> Enforcer:
    """The enforcer of an office's step taken at the command line (``sijill rnp erasure``):
    the office client must be registered and enabled, and the officer, when one acts, signs in
    as at the console (``officer``: username, password and TOTP code; LoginFailed otherwise).
    The policy then decides as it does over HTTP, with the client's registered scopes: an
    operator's shell names no one by itself, so a step that needs a named officer (four eyes)
    gets one only through their own credentials."""
    client = services.oauth.registry.get(client_id)
    if client is None or client.disabled or client.kind != "office":
        raise Problem(403, "forbidden", "No enabled office client has this id.")
    actor = None
    if officer is not None:
        actor = services.oauth.staff("officer").authenticate(officer).subject
    principal = Principal(
        kind="office",
        client_id=client.client_id,
        sector=client.sector,
        scopes=frozenset(client.scopes),
        purposes=frozenset(client.purposes),
        subject=client.client_id,
        token_id=COMMAND_LINE_STEP,
        actor=actor,
    )
    return Enforcer(services=services, principal=principal, action=action)


def _serves_citizen(services: Services, idcs: str) -> None:
    """An erased person's sign-in token, minted before the erasure and not yet expired, no
    longer serves anything (Law 09.08 art. 8: nothing is processed about them any more)."""
    try:
        erased = services.register.status(idcs) == "erased"
    except UnknownPerson:
        return  # the routes answer for a person the register does not know
    if erased:
        raise Problem(
            401,
            "invalid-token",
            "The person this token was issued for is no longer in the register.",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )


def is_mediated(dependant: Dependant) -> bool:
    """Whether a route's dependency tree contains an :func:`authorize` dependency."""
    stack = [dependant]
    while stack:
        current = stack.pop()
        if getattr(current.call, MEDIATED_ATTR, None) is not None:
            return True
        stack.extend(current.dependencies)
    return False


def unmediated_routes(routes: Iterable[BaseRoute], public: set[tuple[str, str]]) -> list[str]:
    """``METHOD path`` of every route that is neither public nor goes through the policy."""
    missing = []
    for route in routes:
        methods = sorted(getattr(route, "methods", None) or ())
        path = getattr(route, "path", "?")
        for method in methods:
            if method == "HEAD" or (method, path) in public:
                continue
            dependant = getattr(route, "dependant", None)
            if dependant is None or not is_mediated(dependant):
                missing.append(f"{method} {path}")
    return missing
