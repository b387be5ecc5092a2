"""The human review desk (Law 09.08 art. 11): a citizen's request that a person, not only the
model, decide on their household's score, and the officer's answer.

The officer sees the household under a pseudonym (a keyed hash of its register id, never a
member's IDCS), its declaration without the members' identifiers and the score's explanation,
all read inside the vault under a decision of the enforcement point. The officer confirms the
score, corrects the declaration (rewritten and rescored in the vault at once, through the RSU
register) or overrides the eligibility with a reason: the override is written where the
score lives, on the household's vault record, and the eligibility answer follows it (agencies
still get a boolean only). Confirming or correcting withdraws an earlier override. Each
decision's reason is a vault record of its own (kind ``review``), which the household's member
reads with the outcome. Every step is one decision and one audit entry.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from consent import ConsentNotFound, InvalidConsent, Review, ReviewStatus
from consent.service import REVIEW_PERIOD_DAYS
from gateway.authz import Enforcer, Outcome
from gateway.households import changed_by
from gateway.problems import Problem
from gateway.services import Services
from rsu import DeclarationIn, UnknownHousehold, problems_of
from vault import Explanation, NotScored

__all__ = [
    "REVIEW_LAW",
    "OpenedReview",
    "decide_review",
    "household_pseudonym",
    "my_reviews",
    "open_review",
    "request_review",
    "review_queue",
]

REVIEW_LAW = (
    "Law 09.08 art. 11: a decision may not rest solely on automated processing; an officer "
    f"reviews your household's declaration and score within {REVIEW_PERIOD_DAYS} days."
)
ReviewOutcome = Literal["confirm", "correct", "override"]
_STATUS: dict[str, ReviewStatus] = {
    "confirm": ReviewStatus.CONFIRMED,
    "correct": ReviewStatus.CORRECTED,
    "override": ReviewStatus.OVERRIDDEN,
}


@dataclass(frozen=True)
class OpenedReview:
    review: Review
    household: str  # the pseudonym
    size: int
    declaration: dict[str, Any]
    explanation: Explanation | None
    decision_id: str


def household_pseudonym(services: Services, household_id: str) -> str:
    """What the desk calls a household: stable for the desk, unlinkable to the register's id
    or to an agency's pseudonyms without the vault's key."""
    return "hh-" + services.vault.mac("review-desk:v1", household_id.encode()).hex()[:20]


def overdue(review: Review, now_ns: int | None = None) -> bool:
    now = time.time_ns() if now_ns is None else now_ns
    return review.status is ReviewStatus.PENDING and now > review.due_at_ns


def request_review(services: Services, enforcer: Enforcer) -> Review:
    """The citizen's request (action ``request_review``), on their household's desk."""
    idcs = enforcer.principal.subject
    household_id = services.households.household_id_of(idcs)
    if household_id is None:
        raise Problem(404, "no-household", "You are not a member of a household in the RSU.")
    enforcer.decide(
        resource={"kind": "household", "owner": idcs, "fields": []},
        purpose=None,
        subject_tag=enforcer.subject_tag(idcs),
    ).require_allowed()
    return services.consents.request_review(
        subject=idcs, about="rsu_score", household_id=household_id
    )


def my_reviews(services: Services, enforcer: Enforcer) -> list[dict[str, Any]]:
    """The caller's review requests, newest first, each decided one with its reasons
    (revealed from the vault under one decision, action ``request_review``)."""
    idcs = enforcer.principal.subject
    found = services.consents.reviews_of(idcs)
    subjects = [r.reason_subject for r in found if r.reason_subject]
    fields = ["reason", "eligibility"]
    outcome = enforcer.decide(
        resource={"kind": "review", "owner": idcs, "fields": fields},
        purpose=None,
        vault_subjects=subjects,
        subject_tag=enforcer.subject_tag(idcs),
    ).require_allowed()
    reasons = {
        s: services.vault.reveal(s, fields, outcome.decisions[s])
        for s in subjects
        if s in outcome.decisions
    }
    return [
        {
            **r.as_public(),
            "overdue": overdue(r),
            "reason": reasons.get(r.reason_subject or "", {}).get("reason"),
            "eligibility": reasons.get(r.reason_subject or "", {}).get("eligibility"),
        }
        for r in found
    ]


def review_queue(
    services: Services, enforcer: Enforcer, status: ReviewStatus | None
) -> list[dict[str, Any]]:
    """The desk's queue (action ``list_reviews``): households by pseudonym, dates, status."""
    enforcer.decide(resource={"kind": "review"}, purpose=None).require_allowed()
    return [
        {
            **r.as_public(),
            "household": household_pseudonym(services, r.household_id),
            "overdue": overdue(r),
        }
        for r in services.consents.reviews(status=status)
    ]


def _review(services: Services, review_id: str) -> Review:
    try:
        return services.consents.review(review_id)
    except ConsentNotFound:
        raise Problem(404, "not-found", "No such review request.") from None


def _household(services: Services, review: Review) -> tuple[str, int]:
    try:
        found = services.households.get(review.household_id)
    except UnknownHousehold:
        raise Problem(
            404, "household-gone", "The household has been dissolved since the request."
        ) from None
    return found.vault_subject, found.size


def _about_household(
    enforcer: Enforcer, review: Review, subject: str, fields: list[str]
) -> Outcome:
    # Filed under the requester's tag: the review shows in their own access log.
    return enforcer.decide(
        resource={"kind": "household", "fields": fields},
        purpose=None,
        vault_subjects=[subject],
        subject_tag=review.subject,
    ).require_allowed()


def open_review(
    services: Services, enforcer: Enforcer, review_id: str, *, language: str = "fr"
) -> OpenedReview:
    """The review with the household's declaration (members without their IDCS) and the
    score's explanation (action ``open_review``)."""
    review = _review(services, review_id)
    subject, size = _household(services, review)
    outcome = _about_household(enforcer, review, subject, ["declaration"])
    decision = outcome.decisions[subject]
    revealed = services.vault.reveal(subject, ["declaration"], decision)
    declaration: dict[str, Any] = json.loads(str(revealed["declaration"]))
    declaration["members"] = [
        {k: v for k, v in m.items() if k != "idcs"} for m in declaration.get("members", [])
    ]
    try:
        explanation: Explanation | None = services.vault.explain(
            subject, decision, language=language, models=services.households.models
        )
    except NotScored:
        explanation = None
    return OpenedReview(
        review=review,
        household=household_pseudonym(services, review.household_id),
        size=size,
        declaration=declaration,
        explanation=explanation,
        decision_id=outcome.decision_id,
    )


def decide_review(
    services: Services,
    enforcer: Enforcer,
    review_id: str,
    *,
    outcome: ReviewOutcome,
    reason: str,
    declaration: dict[str, Any] | None = None,
    eligible: bool | None = None,
) -> tuple[Review, str]:
    """Close the review with ``outcome`` (action ``decide_review``); returns it and the
    decision id. ``correct`` needs ``declaration`` (the questionnaire without members),
    ``override`` needs ``eligible``."""
    review = _review(services, review_id)
    if review.status is not ReviewStatus.PENDING:
        raise _decided()
    parsed = _checked(outcome, declaration, eligible)
    subject, _size = _household(services, review)
    fields = ["reason", "eligibility"] + (["declaration"] if outcome == "correct" else [])
    decided = _about_household(enforcer, review, subject, fields)
    if parsed is not None:
        services.households.correct_declaration(
            review.household_id, parsed, by=changed_by(enforcer)
        )
    human = None if eligible is None else ("eligible" if eligible else "not_eligible")
    # An override stands until a later review confirms or corrects the score.
    services.vault.override_eligibility(
        subject, human if outcome == "override" else None, decided.decisions[subject]
    )
    reason_subject = "rv_" + secrets.token_hex(16)
    record: dict[str, object] = {"reason": reason}
    if outcome == "override" and human is not None:
        record["eligibility"] = human
    services.vault.store(reason_subject, "review", record)
    try:
        closed = services.consents.decide_review(
            review_id,
            status=_STATUS[outcome],
            officer=str(enforcer.actor()["id"]),
            reason_subject=reason_subject,
        )
    except InvalidConsent:
        services.vault.erase(reason_subject)
        raise _decided() from None
    return closed, decided.decision_id


def _checked(
    outcome: ReviewOutcome, declaration: dict[str, Any] | None, eligible: bool | None
) -> DeclarationIn | None:
    """The corrected declaration, validated before anything changes."""
    if outcome == "override" and eligible is None:
        raise Problem(
            422, "validation-error", "An override says whether the household is eligible."
        )
    if outcome != "override" and eligible is not None:
        raise Problem(422, "validation-error", "Only an override decides eligibility.")
    if outcome != "correct":
        if declaration is not None:
            raise Problem(422, "validation-error", "Only a correction carries a declaration.")
        return None
    if declaration is None:
        raise Problem(422, "validation-error", "A correction carries the corrected declaration.")
    try:
        return DeclarationIn.model_validate(declaration)
    except (ValidationError, ValueError) as exc:
        where = ", ".join(sorted({field for field, _ in problems_of(exc)}))
        raise Problem(
            422, "validation-error", f"The corrected declaration is not valid at: {where}."
        ) from None


def _decided() -> Problem:
    return Problem(409, "already-decided", "This review has been decided already.")
