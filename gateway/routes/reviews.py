"""The human review desk (Law 09.08 art. 11): officers list, open and decide the citizens'
requests (``/v1/reviews``); the citizen reads the outcomes (``/v1/me/score/reviews``). The
work is gateway/reviews.py's; these routes parse and map."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from consent import ReviewStatus
from gateway.admission import authorize
from gateway.authz import Enforcer
from gateway.problems import responses
from gateway.reviews import REVIEW_LAW, decide_review, my_reviews, open_review, review_queue
from gateway.routes.me import score_view
from gateway.services import Services, get_services
from gateway.timefmt import public_times

router = APIRouter(
    prefix="/v1/reviews",
    tags=["registration offices"],
    responses=responses(400, 401, 403, 404, 408, 409, 413, 422, 503),
)
citizen_router = APIRouter(
    prefix="/v1/me",
    tags=["citizens"],
    responses=responses(400, 401, 403, 404, 408, 413, 422, 503),
)
ReviewId = Annotated[
    str,
    Path(
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        description="The review request's id",
    ),
]


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Literal["confirm", "correct", "override"]
    reason: str = Field(min_length=1, max_length=2000, description="Told to the household")
    declaration: dict[str, Any] | None = Field(
        default=None, description="correct: the corrected questionnaire (members unchanged)"
    )
    eligible: bool | None = Field(
        default=None, description="override: the household's eligibility, decided by a person"
    )


@router.get("", summary="The review desk's queue: households by pseudonym, deadlines")
def list_reviews(
    status: Annotated[ReviewStatus | None, Query()] = ReviewStatus.PENDING,
    enforcer: Enforcer = Depends(authorize("list_reviews", kinds=["office"])),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    return {"items": [public_times(r) for r in review_queue(services, enforcer, status)]}


@router.get("/{review_id}", summary="One review: the declaration and the score's explanation")
def get_review(
    review_id: ReviewId,
    lang: Literal["ar", "fr", "en"] = "fr",
    enforcer: Enforcer = Depends(authorize("open_review", kinds=["office"])),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    opened = open_review(services, enforcer, review_id, language=lang)
    return {
        **public_times(opened.review.as_public()),
        "household": opened.household,
        "size": opened.size,
        "declaration": opened.declaration,
        "score": None if opened.explanation is None else score_view(opened.explanation),
        "decision_id": opened.decision_id,
    }


@router.post(
    "/{review_id}/decision",
    summary="Confirm the score, correct the declaration (rescored) or override the eligibility",
)
def decide(
    review_id: ReviewId,
    body: DecisionIn,
    enforcer: Enforcer = Depends(authorize("decide_review", kinds=["office"])),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    closed, decision_id = decide_review(
        services,
        enforcer,
        review_id,
        outcome=body.outcome,
        reason=body.reason,
        declaration=body.declaration,
        eligible=body.eligible,
    )
    return {**public_times(closed.as_public()), "decision_id": decision_id}


@citizen_router.get(
    "/score/reviews", summary="My review requests: status, deadline, outcome and its reasons"
)
def list_my_reviews(
    enforcer: Enforcer = Depends(authorize("request_review", kinds=["citizen"])),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    return {"items": [public_times(r) for r in my_reviews(services, enforcer)], "law": REVIEW_LAW}
