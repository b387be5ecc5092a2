"""The policy enforcement point: every route that touches personal data goes through here.

For one request: build the policy input → ask the engine for one decision → bound what it
released by the request and the processing registry → append one audit entry, durably → only
then, if allowed, seal a :class:`vault.Decision` that lets the vault reveal exactly the released
fields. Any failure on that path denies (fail closed): no decision, no audit entry, no data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Any

from audit import AppendReceipt, AuditEntry, AuditUnavailable
from audit.entry import Actor, ActorKind
from audit.entry import Outcome as EntryOutcome
from gateway.auth import Principal
from gateway.court_orders import UnderOrder
from gateway.problems import Problem
from gateway.questions import (
    PolicyContext,
    PolicyInput,
    PolicySubject,
    Question,
    Resource,
)
from gateway.services import Services
from policies import PolicyResult, PolicyUnavailable
from policies.decision_log import UNLISTED
from policies.registry import field_catalogue, registry_bound_actions
from vault import Decision

log = logging.getLogger("sijill.authz")

# Actions whose releases the processing registry bounds (an agency's), and the field names an
# anomaly record may name (anything else an engine invents is logged as UNLISTED).
REGISTRY_ACTIONS = registry_bound_actions()
CATALOGUE = field_catalogue()
# A batch's decisions sealed under one signature: a slice the answer streams at a time, so the
# decisions of the items being answered live their TTL from when they are answered.
SEAL_SLICE = 100


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


@dataclass
class Enforcer:
    """Bound to one request's principal and action; routes call :meth:`decide` once, then
    :meth:`reveal` what it released."""

    services: Services
    principal: Principal
    action: str
    # Where the request came, for the security event of a refusal (gateway/security.py).
    route: str | None = None
    source: str | None = None
    _tags: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def subject_tag(self, idcs: str) -> str:
        """The keyed hash under which a person's audit entries are filed: of the IDCS, which
        stays when a rectification gives the person a new vault record. Computed once a
        request (the entry's subject and a citizen's actor id are the same tag)."""
        tag = self._tags.get(idcs)
        if tag is None:
            tag = self._tags[idcs] = self.services.vault.subject_tag(idcs)
        return tag

    def charge(self, items: int) -> None:
        """Spend an agency's rate limit for a batch of ``items`` (429 when over it): a batch
        asks what as many single requests would, and counts as many."""
        if self.principal.kind == "agency":
            try:
                self.services.rate_limiter.check(self.principal.client_id, cost=items)
            except Problem:
                self.record_rate_limited()
                raise

    def record_rate_limited(self) -> None:
        """Put a client's refusal by its rate limit on the record (a security event)."""
        p = self.principal
        kind: ActorKind = "law_enforcement" if p.kind == "law_enforcement" else "agency"
        self.services.security_events.record(
            "rate_limited",
            "over_rate",
            actor={"kind": kind, "id": p.client_id, "sector": p.sector},
            route=self.route,
            source=self.source,
        )

    def context(self, idcs: str) -> PolicyContext:
        """The person's tag, consents and objections, read in one round trip."""
        consents, objections = self.services.consents.policy_context(idcs)
        return PolicyContext(self.subject_tag(idcs), consents, objections)

    def contexts(self, idcs: Sequence[str]) -> dict[str, PolicyContext]:
        """:meth:`context` of each person, all read in one round trip (a batch's)."""
        read = self.services.consents.policy_contexts(idcs)
        return {
            person: PolicyContext(self.subject_tag(person), consents, objections)
            for person, (consents, objections) in read.items()
        }

    def reveal(self, outcome: Outcome, fields: Iterable[str]) -> dict[str, object]:
        """The values of ``fields`` the decision released, each read from the record that
        holds it (:attr:`Outcome.records`) with that record's own sealed decision; a field
        nobody released, or that no record holds, is simply absent."""
        return self.reveal_many([(outcome, fields)])[0]

    def reveal_many(self, asks: Sequence[tuple[Outcome, Iterable[str]]]) -> list[dict[str, object]]:
        """:meth:`reveal` for each (outcome, fields), in order, through one vault read: each
        record is still revealed under its own sealed decision only."""
        requests: list[tuple[str, list[str], Decision]] = []
        wanted: list[list[tuple[int, str, list[str]]]] = []
        for outcome, fields in asks:
            asked = set(fields) & set(outcome.result.fields)
            mine: list[tuple[int, str, list[str]]] = []
            for subject, names in outcome.records.items():
                chosen = sorted(f for f in asked if f in names)
                if chosen:
                    mine.append((len(requests), subject, chosen))
                    requests.append(
                        (subject, [names[f] for f in chosen], outcome.decisions[subject])
                    )
            wanted.append(mine)
        found = self.services.vault.reveal_many(requests) if requests else []
        revealed: list[dict[str, object]] = []
        for (outcome, _fields), mine in zip(asks, wanted, strict=True):
            values: dict[str, object] = {}
            for at, subject, chosen in mine:
                names = outcome.records[subject]
                values.update({f: found[at][names[f]] for f in chosen if names[f] in found[at]})
            revealed.append(values)
        return revealed

    def policy_input(
        self,
        resource: Resource,
        purpose: str | None,
        consents: Sequence[Mapping[str, Any]],
        objections: Sequence[Mapping[str, Any]],
        now_ns: int,
        under: UnderOrder | None = None,
    ) -> PolicyInput:
        doc: PolicyInput = {
            "subject": policy_subject(self.principal),
            "action": self.action,
            "resource": resource.copy(),
            "purpose": purpose,
            "consents": list(consents),
            "objections": list(objections),
            "time_ns": now_ns,
        }
        if under is not None:
            doc["court_order"] = under.policy_input()
        return doc

    def decide(
        self,
        *,
        resource: Resource,
        purpose: str | None,
        vault_subjects: Sequence[str] | Mapping[str, Mapping[str, str] | None] = (),
        subject_tag: str | None = None,
        consents: Sequence[Mapping[str, Any]] = (),
        objections: Sequence[Mapping[str, Any]] = (),
        recorded: Sequence[str] = (),
        under: UnderOrder | None = None,
    ) -> Outcome:
        """One decision, recorded before anything is released.

        ``vault_subjects`` are the vault ids of the person (and household) concerned: sealed
        decisions are issued for them only. Given as a mapping, each subject's decision is
        narrowed to the released fields its map names (policy field -> vault field): a
        household's decision then releases ``household_size`` as the vault's ``size`` and no
        person field at all, and a record none of whose fields is released gets no decision;
        ``subject_tag`` is the person's keyed hash for
        the audit entry (never the IDCS); ``recorded`` are codes the entry carries after the
        decision's reasons (a batch's ``count=N``); ``under`` the court order a request is made
        under, in the policy input and in the entry (with its embargo).
        """
        now_ns = time.time_ns()
        result, entry = self._judge(
            resource, purpose, consents, objections, now_ns, subject_tag, recorded, under
        )
        receipt = self._append(entry, must=True)
        assert receipt is not None
        return self._sealed([(result, receipt, resource, purpose, vault_subjects)])[0]

    def decide_many(
        self, purpose: str | None, questions: Sequence[Question]
    ) -> Iterator[Outcome | None]:
        """One decision per question, each exactly as :meth:`decide` (or, for a question about
        no subject, :meth:`refuse_unknown`) makes it alone, their entries appended in one
        durable batch before any is sealed: if the batch cannot be recorded, none of its
        items is released (fail closed), and the caller gets the single 503.

        Yields each question's outcome in order, sealed as the caller takes it (a sealed
        decision lives seconds: from when its item is answered, not when the batch was
        decided); None where the subject does not exist for this caller (its refusal is on
        the record as ``unknown_subject``)."""
        judged: list[PolicyResult | None] = []
        entries: list[AuditEntry] = []
        for question in questions:
            now_ns = time.time_ns()
            context = question.context
            if context is None:
                entries.append(self._unknown_entry(now_ns, question.resource, purpose))
                judged.append(None)
                continue
            result, entry = self._judge(
                question.resource,
                purpose,
                context.consents,
                context.objections,
                now_ns,
                context.subject_tag,
            )
            entries.append(entry)
            judged.append(result)
        receipts = self._append_many(entries)
        return self._sealed_in_slices(purpose, questions, judged, receipts)

    def _sealed_in_slices(
        self,
        purpose: str | None,
        questions: Sequence[Question],
        judged: Sequence[PolicyResult | None],
        receipts: Sequence[AppendReceipt],
    ) -> Iterator[Outcome | None]:
        """The outcomes of recorded decisions in order, :data:`SEAL_SLICE` sealed together
        (one signature) when the caller takes the first of them."""
        items = iter(zip(questions, judged, receipts, strict=True))
        while part := list(islice(items, SEAL_SLICE)):
            sealed = iter(
                self._sealed(
                    [(r, receipt, q.resource, purpose, q.vault_subjects)
                     for q, r, receipt in part if r is not None]
                )
            )  # fmt: skip
            for _question, result, _receipt in part:
                yield None if result is None else next(sealed)

    def _judge(
        self,
        resource: Resource,
        purpose: str | None,
        consents: Sequence[Mapping[str, Any]],
        objections: Sequence[Mapping[str, Any]],
        now_ns: int,
        subject_tag: str | None,
        recorded: Sequence[str] = (),
        under: UnderOrder | None = None,
    ) -> tuple[PolicyResult, AuditEntry]:
        """The bounded decision on one question, and the entry that must be durable before
        anything it allows is released."""
        fields = [str(f) for f in resource.get("fields", ())]
        result = self._ask(resource, purpose, consents, objections, now_ns, subject_tag, under)
        result = self._bounded(result, fields, purpose, now_ns)
        outcome: EntryOutcome = "allow" if result.allow else "deny"
        entry = self._entry(
            now_ns,
            subject_tag,
            list(result.fields) if result.allow else fields,
            purpose,
            result,
            outcome,
            [*result.reasons, *recorded],
        )
        return result, replace(entry, court_order=under.audit_record()) if under else entry

    def _sealed(
        self,
        recorded: Sequence[
            tuple[
                PolicyResult,
                AppendReceipt,
                Resource,
                str | None,
                Sequence[str] | Mapping[str, Mapping[str, str] | None],
            ]
        ],
    ) -> list[Outcome]:
        """The outcomes of recorded decisions (result, receipt, resource, purpose, vault
        subjects): a capability for each vault subject a decision releases something of (none
        when it denies), all of them sealed together."""
        drafts: list[dict[str, Decision]] = []
        for result, receipt, resource, purpose, vault_subjects in recorded:
            drafts.append(self._drafts(result, receipt, resource, purpose, vault_subjects))
        issuer = self.services.decision_issuer
        signed = iter(issuer.seal_many([d for mine in drafts for d in mine.values()]))
        outcomes = []
        for (result, receipt, _resource, _purpose, vault_subjects), mine in zip(
            recorded, drafts, strict=True
        ):
            records = (
                {s: names for s, names in vault_subjects.items() if names is not None}
                if isinstance(vault_subjects, Mapping)
                else {}
            )
            decisions = {subject: next(signed) for subject in mine}
            outcomes.append(
                Outcome(result=result, receipt=receipt, decisions=decisions, records=records)
            )
        return outcomes

    def _drafts(
        self,
        result: PolicyResult,
        receipt: AppendReceipt,
        resource: Resource,
        purpose: str | None,
        vault_subjects: Sequence[str] | Mapping[str, Mapping[str, str] | None],
    ) -> dict[str, Decision]:
        """The unsigned capability of a recorded decision for each vault subject it releases
        something of (none when it denies)."""
        if not result.allow:
            return {}
        fields = [str(f) for f in resource.get("fields", ())]
        scoped = (
            dict(vault_subjects)
            if isinstance(vault_subjects, Mapping)
            else dict.fromkeys(vault_subjects)
        )
        drafts = {}
        for subject, names in scoped.items():
            narrowed = result if names is None else _scoped(result, names)
            if names is not None and not narrowed.fields:
                continue  # nothing of this record is released: no capability for it
            drafts[subject] = self.services.decision_issuer.draft(
                narrowed,
                subject=subject,
                action=self.action,
                purpose=purpose or "",
                audit_index=receipt.index,
                requested=fields if names is None else [names[f] for f in fields if f in names],
            )
        return drafts

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
        self.services.security_events.record(
            "policy_anomaly", "release_beyond_bound", actor=self.actor()
        )
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
        under: UnderOrder | None = None,
    ) -> PolicyResult:
        """The engine's decision on this request; 503 (and an error entry) when it has none."""
        doc = self.policy_input(resource, purpose, consents, objections, now_ns, under)
        try:
            return self.services.policy.decide(doc)
        except PolicyUnavailable:
            fields = [str(f) for f in resource.get("fields", ())]
            # Deny, and put the failure itself on the record when the log is there (under the
            # order's embargo, as the decision's would have been).
            entry = self._entry(
                now_ns, subject_tag, fields, purpose, None, "error", ["policy_unavailable"]
            )
            order = under.audit_record() if under else None
            self._append(replace(entry, court_order=order), must=False)
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
        detail: str = "No such person for this agency.",
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
        self._append(self._unknown_entry(now_ns, resource, purpose), must=True)
        raise unknown_subject(detail)

    def _unknown_entry(self, now_ns: int, resource: Resource, purpose: str | None) -> AuditEntry:
        """The record of a request about no subject this caller may know of."""
        fields = sorted(str(f) for f in resource.get("fields", ()))
        return self._entry(now_ns, None, fields, purpose, None, "deny", ["unknown_subject"])

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
            reused_decision_id=result.reused if result else None,
        )

    def actor(self) -> Actor:
        """Who acted, as the audit log records it: never a citizen's IDCS (their keyed tag)."""
        principal = self.principal
        if principal.kind == "citizen":
            return {"kind": "citizen", "id": self.subject_tag(principal.subject), "sector": None}
        actor_id = principal.client_id
        if principal.actor is not None:
            actor_id = f"{principal.client_id}/{principal.actor}"
        actor: Actor = {"kind": principal.kind, "id": actor_id, "sector": principal.sector or None}
        if principal.official is not None and principal.case is not None:
            actor["official"] = principal.official
            actor["case"] = principal.case
        return actor

    def _append(self, entry: AuditEntry, *, must: bool) -> AppendReceipt | None:
        try:
            return self.services.audit.append(entry)
        except AuditUnavailable:
            log.error("audit append failed", extra={"action": self.action})
            if must:
                raise _audit_unavailable() from None
            return None

    def _append_many(self, entries: Sequence[AuditEntry]) -> list[AppendReceipt]:
        """A batch's entries in one transaction: all recorded, or none and the 503."""
        try:
            receipts = self.services.audit.append_many(entries)
        except AuditUnavailable:
            log.error("audit append failed", extra={"action": self.action, "batch": len(entries)})
            raise _audit_unavailable() from None
        if len(receipts) != len(entries):
            raise _audit_unavailable()
        return receipts


def unknown_subject(detail: str = "No such person for this agency.") -> Problem:
    """The one answer about a subject that does not exist, is erased, or is another sector's:
    the same whichever, so that it is no oracle of who is registered."""
    return Problem(404, "not-found", detail)


def _audit_unavailable() -> Problem:
    return Problem(
        503,
        "audit-unavailable",
        "The audit log could not record this request; nothing was released.",
        headers={"Retry-After": "5"},
    )


def _scoped(result: PolicyResult, names: Mapping[str, str]) -> PolicyResult:
    """The same decision, narrowed to the fields ``names`` maps and renamed as it says (the
    decision itself where that changes nothing: a person's record, whose names are the
    policy's)."""
    fields = tuple(sorted(names[f] for f in result.fields if f in names))
    obligations = {names[k]: v for k, v in result.obligations.items() if k in names}
    if fields == tuple(result.fields) and obligations == dict(result.obligations):
        return result
    return replace(result, fields=fields, obligations=obligations)


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
        if principal.official is not None and principal.case is not None:
            subject["official"] = principal.official
            subject["case"] = principal.case
    elif principal.kind == "citizen":
        subject["idcs"] = principal.subject
    elif principal.actor is not None:
        subject["actor"] = principal.actor
    return subject
