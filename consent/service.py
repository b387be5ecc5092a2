"""The consent lifecycle: grant, revoke, list, object; what the policies read on each request.

Nothing is cached: :meth:`ConsentService.for_policy` reads the store on every call, so a
revocation, an expiry or an objection applies to the very next request.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    RowMapping,
    Select,
    and_,
    bindparam,
    delete,
    exists,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import alias

from consent import tables
from consent.errors import ConsentNotFound, InvalidConsent
from consent.models import (
    CollectionMethod,
    Consent,
    ConsentStatus,
    Objection,
    Review,
    ReviewStatus,
)
from consent.receipts import kantara_receipt
from policies.registry import ProcessingRegistry, RegistryEntry
from storekit import hot_sql

Signer = Callable[[dict[str, Any]], str]
DAY_NS = 86_400 * 1_000_000_000
OBJECTION_REASONS = {"personal_situation", "direct_marketing", "other"}
REVIEW_REASON = "automated_decision"
# Automated results a person can ask a human to review (Law 09.08 art. 11).
REVIEWABLE = {"rsu_score"}
# Law 09.08 art. 11 sets no period for a review: this is the office's own commitment
# (docs/privacy.md, "Human review"), and each request shows the date it is due.
REVIEW_PERIOD_DAYS = 30

_newer = alias(tables.consents, "newer")
_Rows = Iterable[Mapping[str, Any]]


# A subject's artefacts, newest first, each marked if a later artefact replaces it.
def _consents_where(condition: ColumnElement[bool]) -> Select[Any]:
    return (
        select(
            tables.consents,
            exists().where(_newer.c.replaces == tables.consents.c.id).label("is_replaced"),
        )
        .where(condition)
        .order_by(tables.consents.c.granted_at_ns.desc(), tables.consents.c.id)
    )


def _objections_where(condition: ColumnElement[bool]) -> Select[Any]:
    return select(tables.objections).where(condition).order_by(tables.objections.c.created_at_ns)


_OF_SUBJECT = _consents_where(tables.consents.c.subject == bindparam("subject"))
_OBJECTIONS = _objections_where(tables.objections.c.subject == bindparam("subject"))


class ConsentService:
    def __init__(
        self,
        engine: Engine,
        registry: ProcessingRegistry,
        sign: Signer,
        *,
        policy_url: str = "https://anr.example.ma/privacy",
        subject_key: Callable[[str], str] = str,
    ) -> None:
        """``subject_key`` turns the person's IDCS into the key rows are stored under. The
        gateway passes the vault's keyed hash, so the consent store never links an IDCS to
        the purposes a person consented to (a health purpose can itself be sensitive)."""
        self._engine = engine
        self._registry = registry
        self._sign = sign
        self._policy_url = policy_url
        self._key = subject_key
        self._hot = hot_sql(engine)
        # The two reads of policy_context for many subjects at once (a batch's).
        self._of_subjects = _consents_where(self._hot.among(tables.consents.c.subject, "keys"))
        self._objections_of = _objections_where(
            self._hot.among(tables.objections.c.subject, "keys")
        )

    # -- granting and revoking -------------------------------------------------------------

    def validate_grant(
        self,
        *,
        recipient: str,
        purpose: str,
        fields: Sequence[str],
        expires_at_ns: int,
        method: str,
        now_ns: int | None = None,
    ) -> tuple[RegistryEntry, tuple[str, ...]]:
        """The registry entry a consent would rest on and its fields, or :class:`InvalidConsent`.

        Pure: callers check a request with it before doing anything on its behalf (the
        gateway computes the receipt's sector pseudonym only for a valid request)."""
        now = time.time_ns() if now_ns is None else now_ns
        entry = self._entry_for(purpose, recipient, now)
        wanted = tuple(sorted(set(fields)))
        if not wanted:
            raise InvalidConsent("no_fields", "A consent must name at least one field.")
        outside = sorted(set(wanted) - set(entry.fields))
        if outside:
            raise InvalidConsent(
                "fields_outside_registry",
                "These fields are not declared for this purpose: " + ", ".join(outside) + ".",
            )
        if expires_at_ns <= now:
            raise InvalidConsent("expiry_in_past", "The expiry must be in the future.")
        if expires_at_ns > now + entry.consent_max_days * DAY_NS:
            raise InvalidConsent(
                "expiry_beyond_maximum",
                f"This purpose allows consents of at most {entry.consent_max_days} days.",
            )
        if method not in set(CollectionMethod):
            raise InvalidConsent("invalid_method", "Unknown collection method.")
        return entry, wanted

    def grant(
        self,
        *,
        subject: str,
        principal_id: str,
        recipient: str,
        purpose: str,
        fields: Sequence[str],
        expires_at_ns: int,
        method: str,
        now_ns: int | None = None,
    ) -> Consent:
        """A new ACTIVE artefact, validated against the registry; nothing stored if invalid."""
        now = time.time_ns() if now_ns is None else now_ns
        entry, wanted = self.validate_grant(
            recipient=recipient, purpose=purpose, fields=fields,
            expires_at_ns=expires_at_ns, method=method, now_ns=now,
        )  # fmt: skip
        consent = Consent(
            id=str(uuid.uuid4()),
            subject=self._key(subject),
            recipient=recipient,
            sector=entry.sector,
            purpose=purpose,
            registry_entry=entry.id,
            fields=wanted,
            status=ConsentStatus.ACTIVE,
            method=method,
            granted_at_ns=now,
            expires_at_ns=expires_at_ns,
            replaces=None,
            receipt="",
        )
        return self._insert(consent, entry, principal_id)

    def revoke(
        self, *, subject: str, consent_id: str, principal_id: str, now_ns: int | None = None
    ) -> Consent:
        """Record a REVOKED artefact replacing the current one (Law 09.08 art. 4: consent
        can be withdrawn at any time)."""
        now = time.time_ns() if now_ns is None else now_ns
        current = {c.id: c for c in self.of_subject(subject, now_ns=now)}
        old = current.get(consent_id)
        if old is None or old.status is not ConsentStatus.ACTIVE:
            raise ConsentNotFound("No active consent with this id.")
        entry = self._registry.get(old.registry_entry)
        if entry is None:
            raise ConsentNotFound("No active consent with this id.")
        revoked = Consent(
            id=str(uuid.uuid4()),
            subject=self._key(subject),
            recipient=old.recipient,
            sector=old.sector,
            purpose=old.purpose,
            registry_entry=old.registry_entry,
            fields=old.fields,
            status=ConsentStatus.REVOKED,
            method=old.method,
            granted_at_ns=now,
            expires_at_ns=old.expires_at_ns,
            replaces=old.id,
            receipt="",
        )
        try:
            return self._insert(revoked, entry, principal_id)
        except IntegrityError:
            # Someone replaced it between our read and our write.
            raise ConsentNotFound("No active consent with this id.") from None

    def _insert(self, consent: Consent, entry: RegistryEntry, principal_id: str) -> Consent:
        claims = kantara_receipt(consent, entry, principal_id, self._policy_url)
        receipt = self._sign(claims)
        stored = Consent(**{**consent.__dict__, "receipt": receipt})
        notification = self._sign(
            {
                "event": "consent_status",
                "consentReceiptID": stored.id,
                "status": stored.status.value,
                "purpose": stored.purpose,
                "piiPrincipalId": principal_id,
                "replaces": stored.replaces,
                "iat": stored.granted_at_ns // 1_000_000_000,
            }
        )
        with self._engine.begin() as conn:
            conn.execute(
                insert(tables.consents).values(
                    id=stored.id,
                    subject=stored.subject,
                    recipient=stored.recipient,
                    sector=stored.sector,
                    purpose=stored.purpose,
                    registry_entry=stored.registry_entry,
                    fields=json.dumps(list(stored.fields)),
                    status=stored.status.value,
                    method=stored.method,
                    granted_at_ns=stored.granted_at_ns,
                    expires_at_ns=stored.expires_at_ns,
                    replaces=stored.replaces,
                    receipt=stored.receipt,
                )
            )
            # Same transaction: a consent change and its notification land together or not.
            conn.execute(
                insert(tables.outbox).values(
                    recipient=stored.recipient,
                    event=stored.status.value.lower(),
                    body=notification,
                    attempts=0,
                    next_attempt_ns=stored.granted_at_ns,
                )
            )
        return stored

    def _entry_for(self, purpose: str, recipient: str, now: int) -> RegistryEntry:
        entries = self._registry.for_purpose(purpose, now)
        if not entries:
            raise InvalidConsent("unknown_purpose", "No declared processing has this purpose.")
        for entry in entries:
            if recipient in entry.agencies:
                if entry.basis_type != "consent":
                    raise InvalidConsent(
                        "not_consent_based",
                        f"This processing rests on a {entry.basis_type} basis "
                        f"({entry.basis_ref}); it does not ask for consent.",
                    )
                return entry
        raise InvalidConsent(
            "unknown_recipient", "This agency has not declared processing for this purpose."
        )

    # -- reading ---------------------------------------------------------------------------

    def of_subject(self, subject: str, *, now_ns: int | None = None) -> list[Consent]:
        """Every artefact of this subject, newest first, with its status as of now."""
        now = time.time_ns() if now_ns is None else now_ns
        rows = self._hot.maps(_OF_SUBJECT, subject=self._key(subject))
        return [self._from_row(row, now) for row in rows]

    def get(self, subject: str, consent_id: str) -> Consent:
        for consent in self.of_subject(subject):
            if consent.id == consent_id:
                return consent
        raise ConsentNotFound("No consent with this id.")

    def history(self, subject: str, consent_id: str) -> list[Consent]:
        """The chain an artefact belongs to, oldest first."""
        by_id = {c.id: c for c in self.of_subject(subject)}
        if consent_id not in by_id:
            raise ConsentNotFound("No consent with this id.")
        by_replaced = {c.replaces: c for c in by_id.values() if c.replaces}
        first = by_id[consent_id]
        while first.replaces and first.replaces in by_id:
            first = by_id[first.replaces]
        chain = [first]
        while chain[-1].id in by_replaced:
            chain.append(by_replaced[chain[-1].id])
        return chain

    def for_policy(self, subject: str, *, now_ns: int | None = None) -> list[dict[str, Any]]:
        """The subject's current artefacts in the policy input shape (all statuses: the
        policy, not this code, decides which count)."""
        return _consent_inputs(self.of_subject(subject, now_ns=now_ns))

    def policy_context(
        self, subject: str, *, now_ns: int | None = None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """:meth:`for_policy` and :meth:`objections_for_policy` together, read in one
        round trip (what every agency request needs)."""
        now = time.time_ns() if now_ns is None else now_ns
        key = self._key(subject)
        consents, objections = self._hot.batch(
            [(_OF_SUBJECT, {"subject": key}), (_OBJECTIONS, {"subject": key})]
        )
        return self._policy_inputs(consents, objections, now)

    def policy_contexts(
        self, subjects: Sequence[str], *, now_ns: int | None = None
    ) -> dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
        """:meth:`policy_context` of each subject, all read in one round trip (a batch's)."""
        now = time.time_ns() if now_ns is None else now_ns
        keys = {subject: self._key(subject) for subject in subjects}
        listed = {"keys": self._hot.listed(sorted(set(keys.values())))}
        consents, objections = self._hot.batch(
            [(self._of_subjects, listed), (self._objections_of, listed)]
        )
        by_key: dict[str, tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]] = {
            key: ([], []) for key in keys.values()
        }
        for row in consents:
            by_key[row["subject"]][0].append(row)
        for row in objections:
            by_key[row["subject"]][1].append(row)
        return {subject: self._policy_inputs(*by_key[key], now) for subject, key in keys.items()}

    def _policy_inputs(
        self, consents: _Rows, objections: _Rows, now: int
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """A subject's consent and objection rows as the policy input writes them."""
        return (
            _consent_inputs(self._from_row(row, now) for row in consents),
            _objection_inputs(Objection(**row) for row in objections),
        )

    @staticmethod
    def _from_row(m: Mapping[str, Any], now: int) -> Consent:
        status = ConsentStatus(m["status"])
        if m["is_replaced"]:
            status = ConsentStatus.SUPERSEDED
        elif status is ConsentStatus.ACTIVE and m["expires_at_ns"] <= now:
            status = ConsentStatus.EXPIRED
        return Consent(
            id=m["id"],
            subject=m["subject"],
            recipient=m["recipient"],
            sector=m["sector"],
            purpose=m["purpose"],
            registry_entry=m["registry_entry"],
            fields=tuple(json.loads(m["fields"])),
            status=status,
            method=m["method"],
            granted_at_ns=m["granted_at_ns"],
            expires_at_ns=m["expires_at_ns"],
            replaces=m["replaces"],
            receipt=m["receipt"],
            recorded=ConsentStatus(m["status"]),
        )

    # -- erasure ---------------------------------------------------------------------------

    def forget(self, subject: str) -> int:
        """Drop everything this room holds about an erased person (Law 09.08 art. 8): their
        consents and receipts, objections and review requests, and the notifications not yet
        delivered that concern them (those addressed to their keyed tag, and the agencies'
        notices of their consents' changes). Delivered notices hold no trace of them beyond
        the agency's own copy. Idempotent; returns how many rows went."""
        key = self._key(subject)
        c, o = tables.consents, tables.outbox
        with self._engine.begin() as conn:
            ids = set(conn.execute(select(c.c.id).where(c.c.subject == key)).scalars())
            about = [
                row_id
                for row_id, body in conn.execute(
                    select(o.c.id, o.c.body).where(
                        and_(o.c.delivered_at_ns.is_(None), o.c.event.in_(_CONSENT_EVENTS))
                    )
                )
                if _receipt_id(body) in ids
            ]
            gone = len(about)
            if about:
                gone = conn.execute(delete(o).where(o.c.id.in_(about))).rowcount
            gone += conn.execute(
                delete(o).where(and_(o.c.recipient == key, o.c.delivered_at_ns.is_(None)))
            ).rowcount
            gone += conn.execute(delete(c).where(c.c.subject == key)).rowcount
            gone += conn.execute(
                delete(tables.objections).where(tables.objections.c.subject == key)
            ).rowcount
            gone += conn.execute(
                delete(tables.reviews).where(tables.reviews.c.subject == key)
            ).rowcount
        return int(gone)

    # -- objections (Law 09.08 art. 9) ----------------------------------------------------

    def object(
        self,
        *,
        subject: str,
        reason: str,
        purpose: str | None = None,
        sector: str | None = None,
        now_ns: int | None = None,
    ) -> Objection:
        now = time.time_ns() if now_ns is None else now_ns
        if (purpose is None) == (sector is None):
            raise InvalidConsent(
                "objection_target", "An objection names either a purpose or a sector."
            )
        if reason not in OBJECTION_REASONS:
            raise InvalidConsent("objection_reason", "Unknown objection reason.")
        if purpose is not None and purpose != "*" and not self._registry.for_purpose(purpose, now):
            raise InvalidConsent("unknown_purpose", "No declared processing has this purpose.")
        if sector is not None and sector not in {e.sector for e in self._registry}:
            raise InvalidConsent("unknown_sector", "No declared processing is in this sector.")
        objection = Objection(
            id=str(uuid.uuid4()),
            subject=self._key(subject),
            purpose=purpose,
            sector=sector,
            reason=reason,
            created_at_ns=now,
        )
        with self._engine.begin() as conn:
            conn.execute(insert(tables.objections).values(**objection.__dict__))
        return objection

    def objections(self, subject: str) -> list[Objection]:
        rows = self._hot.maps(_OBJECTIONS, subject=self._key(subject))
        return [Objection(**row) for row in rows]

    def objections_for_policy(self, subject: str) -> list[dict[str, Any]]:
        return _objection_inputs(self.objections(subject))

    def request_review(
        self, *, subject: str, about: str, household_id: str, now_ns: int | None = None
    ) -> Review:
        """Law 09.08 art. 11: the person may contest a decision based solely on automated
        processing (here, the score of their household ``household_id``) and have a human
        review it. The request is an objection that stops nothing and a pending review on
        the office's desk, due within :data:`REVIEW_PERIOD_DAYS`; both in one transaction."""
        if about not in REVIEWABLE:
            raise InvalidConsent("not_reviewable", "Only automated results can be reviewed.")
        now = time.time_ns() if now_ns is None else now_ns
        objection = Objection(
            id=str(uuid.uuid4()),
            subject=self._key(subject),
            purpose=about,
            sector=None,
            reason=REVIEW_REASON,
            created_at_ns=now,
        )
        review = Review(
            id=objection.id,
            subject=objection.subject,
            household_id=household_id,
            created_at_ns=now,
            due_at_ns=now + REVIEW_PERIOD_DAYS * DAY_NS,
            status=ReviewStatus.PENDING,
            decided_at_ns=None,
            decided_by=None,
            reason_subject=None,
        )
        with self._engine.begin() as conn:
            conn.execute(insert(tables.objections).values(**objection.__dict__))
            conn.execute(insert(tables.reviews).values(**review.__dict__))
        return review

    # -- the review desk (Law 09.08 art. 11) -----------------------------------------------

    def reviews(self, *, status: ReviewStatus | None = None) -> list[Review]:
        """The desk's queue, oldest first (the nearest deadline first)."""
        query = select(tables.reviews).order_by(tables.reviews.c.created_at_ns)
        if status is not None:
            query = query.where(tables.reviews.c.status == status.value)
        with self._engine.connect() as conn:
            return [_review(row._mapping) for row in conn.execute(query)]

    def review(self, review_id: str) -> Review:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(tables.reviews).where(tables.reviews.c.id == review_id)
            ).first()
        if row is None:
            raise ConsentNotFound("No such review request.")
        return _review(row._mapping)

    def reviews_of(self, subject: str) -> list[Review]:
        """A person's own review requests, newest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(tables.reviews)
                .where(tables.reviews.c.subject == self._key(subject))
                .order_by(tables.reviews.c.created_at_ns.desc())
            )
            return [_review(row._mapping) for row in rows]

    def decide_review(
        self,
        review_id: str,
        *,
        status: ReviewStatus,
        officer: str,
        reason_subject: str | None,
        now_ns: int | None = None,
    ) -> Review:
        """Close a pending review with its outcome; :class:`InvalidConsent` if it is decided
        already (the update matches a pending row only, so two officers cannot both decide)."""
        if status is ReviewStatus.PENDING:
            raise InvalidConsent("review_outcome", "A decision closes the review.")
        now = time.time_ns() if now_ns is None else now_ns
        with self._engine.begin() as conn:
            done = conn.execute(
                update(tables.reviews)
                .where(
                    tables.reviews.c.id == review_id,
                    tables.reviews.c.status == ReviewStatus.PENDING.value,
                )
                .values(
                    status=status.value,
                    decided_at_ns=now,
                    decided_by=officer,
                    reason_subject=reason_subject,
                )
            ).rowcount
        if not done:
            self.review(review_id)  # ConsentNotFound when there is no such review
            raise InvalidConsent("review_decided", "This review has been decided already.")
        return self.review(review_id)

    def objection_effects(
        self, objection: Objection, now_ns: int | None = None
    ) -> list[dict[str, str]]:
        """What the objection stops and what continues, for the citizen's view: processing
        a law makes mandatory continues, and the citizen is told which law."""
        now = time.time_ns() if now_ns is None else now_ns
        out = []
        for entry in self._registry:
            if not entry.in_force(now):
                continue
            hit = objection.purpose in (entry.purpose, "*") or (
                objection.sector is not None and objection.sector == entry.sector
            )
            if not hit:
                continue
            continues = entry.basis_type == "law"
            out.append(
                {
                    "purpose": entry.purpose,
                    "sector": entry.sector,
                    "effect": "continues" if continues else "stopped",
                    "legal_basis": entry.basis_type,
                    "law": entry.basis_ref,
                }
            )
        return out


# The outbox events of a consent's change (its status, lower case), sent to the agency.
_CONSENT_EVENTS = tuple(s.value.lower() for s in ConsentStatus)


def _receipt_id(body: str) -> str | None:
    """The consent a status notice is about: the ``consentReceiptID`` claim of the JWT this
    room signed (read, not verified: it is our own row)."""
    try:
        payload = body.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    found = claims.get("consentReceiptID") if isinstance(claims, dict) else None
    return found if isinstance(found, str) else None


def _consent_inputs(consents: Iterable[Consent]) -> list[dict[str, Any]]:
    return [c.as_policy_input() for c in consents if c.status is not ConsentStatus.SUPERSEDED]


def _review(row: RowMapping) -> Review:
    return Review(**{**row, "status": ReviewStatus(row["status"])})


def _objection_inputs(objections: Iterable[Objection]) -> list[dict[str, Any]]:
    # A request for human review contests one automated result; it does not stop any
    # processing, so the policies never see it.
    return [o.as_policy_input() for o in objections if o.reason != REVIEW_REASON]
