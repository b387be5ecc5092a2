"""Agency batch requests: many persons' questions under one purpose (DESIGN.md "HTTP surface").

A payment run asks the same question about many households. Each item of a batch is decided,
recorded and answered exactly as the single route would decide, record and answer it alone:
its own policy decision and decision id, its own audit entry (hence its own line in the
citizen's access log), its own outcome, and an item denied, unknown or another sector's says
no more than the single route's refusal. What a batch shares is the cost: the entries are
appended in one durable transaction (if it fails, no item is released and the batch gets the
single 503). The answer streams as NDJSON, one line an item, in the order asked, a slice of
items at a time (:data:`gateway.authz.SEAL_SLICE`): the slice's decisions are sealed under one
signature, its released fields read through one vault reveal, so the plaintext held at once
stays that small whatever the batch's size.

Bad batch input (empty, over :data:`MAX_ITEMS`, a malformed item) is one problem document,
answered before anything is decided or recorded. The agency's rate limit counts items.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response, StreamingResponse

from gateway.admission import authorize
from gateway.authz import SEAL_SLICE, Enforcer, Outcome, unknown_subject
from gateway.problems import Problem, responses
from gateway.questions import Question, Resource, person_records
from gateway.routes.agency import (
    PSEUDONYM_PATTERN,
    FieldName,
    Purpose,
    eligibility_answers,
    known_fields,
    query_answer,
    registered_purpose,
)
from gateway.services import Services, get_services
from rsu import Subjects, resolve_many
from vault import VaultError

# Items a batch may carry: a payment run is cut into batches of this size, each answered
# while the agency's connection waits.
MAX_ITEMS = 1000
NDJSON = "application/x-ndjson"

router = APIRouter(
    prefix="/v1/agency/batch",
    tags=["agencies"],
    responses=responses(400, 401, 403, 408, 413, 422, 429, 503),
)

Pseudonym = Annotated[
    str, Field(pattern=PSEUDONYM_PATTERN, description="This agency's sector pseudonym")
]


class QueryItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pseudonym: Pseudonym
    fields: list[FieldName] = Field(min_length=1, max_length=32)


class BatchQueryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: Purpose
    items: list[QueryItem] = Field(min_length=1, description=f"At most {MAX_ITEMS} items")


class EligibilityItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pseudonym: Pseudonym


class BatchEligibilityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    program: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")]
    purpose: Purpose
    items: list[EligibilityItem] = Field(min_length=1, description=f"At most {MAX_ITEMS} items")


class ItemOutcome(BaseModel):
    """One line of a batch's answer: the item's place in the request, and the status and body
    the single route would have answered it with (a problem document's without ``instance``)."""

    item: int
    status: int
    body: dict[str, Any]


def _streamed(description: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": description,
            "content": {NDJSON: {"schema": ItemOutcome.model_json_schema()}},
        }
    }


def _bounded(items: Sequence[object]) -> None:
    """413 for a batch over the limit, before any item is looked at."""
    if len(items) > MAX_ITEMS:
        raise Problem(
            413,
            "batch-too-large",
            f"A batch carries at most {MAX_ITEMS} items; split it into several batches.",
            max_items=MAX_ITEMS,
        )


def _line(item: int, status: int, body: str) -> str:
    return f'{{"item":{item},"status":{status},"body":{body}}}\n'


def _problem_line(item: int, problem: Problem) -> str:
    return _line(item, problem.status, json.dumps(problem.document(), separators=(",", ":")))


def _stream(lines: Iterator[str]) -> Response:
    """The answer's lines, a reveal slice's worth at a time: Starlette takes each item of a
    synchronous iterator in a worker thread, so a chunk a slice costs one thread-pool hop and
    one write per slice instead of one per item."""

    def chunks() -> Iterator[str]:
        while chunk := "".join(islice(lines, SEAL_SLICE)):
            yield chunk

    return StreamingResponse(chunks(), media_type=NDJSON)


@router.post(
    "/query",
    response_class=StreamingResponse,
    responses=_streamed("One line per item, in order: the single query route's answer"),
    summary="Items (pseudonym + fields) + purpose → one query outcome per item, streamed",
)
def query_batch(
    body: BatchQueryIn,
    enforcer: Enforcer = Depends(authorize("read_attributes", kinds=["agency"], per_item=True)),
    services: Services = Depends(get_services),
) -> Response:
    _bounded(body.items)
    requested = [sorted(set(item.fields)) for item in body.items]
    for fields in requested:
        known_fields(fields)
    enforcer.charge(len(requested))
    asked = sorted({f for fields in requested for f in fields})
    registered_purpose(enforcer, {"kind": "person", "fields": asked}, body.purpose)
    resources: list[Resource] = [{"kind": "person", "fields": fields} for fields in requested]
    questions, _found = _questions(
        services, enforcer, [i.pseudonym for i in body.items], resources, person_records
    )
    outcomes = enforcer.decide_many(body.purpose, questions)
    return _stream(_query_lines(enforcer, outcomes, requested))


def _questions(
    services: Services,
    enforcer: Enforcer,
    pseudonyms: Sequence[str],
    resources: Sequence[Resource],
    records: Callable[[Subjects], Sequence[str] | Mapping[str, Mapping[str, str] | None]],
) -> tuple[list[Question], list[Subjects | None]]:
    """Each item's question for :meth:`Enforcer.decide_many`, about the records its pseudonym
    names (``records``), or about no one where it names nobody this agency may know of. The
    pseudonyms are resolved in one read, and the persons' consents and objections in one
    more, whatever the batch's size."""
    resolved = resolve_many(services.engines["main"], enforcer.principal.sector, pseudonyms)
    found_all = [resolved[p] for p in pseudonyms]
    contexts = enforcer.contexts([f.idcs for f in found_all if f is not None])
    questions = [
        Question(resource)
        if found is None
        else Question(resource, contexts[found.idcs], records(found))
        for found, resource in zip(found_all, resources, strict=True)
    ]
    return questions, found_all


def _query_lines(
    enforcer: Enforcer, outcomes: Iterator[Outcome | None], requested: Sequence[list[str]]
) -> Iterator[str]:
    asked = iter(enumerate(requested))
    # The slice first: zip stops at its end without taking one more of the items asked.
    while part := list(zip(islice(outcomes, SEAL_SLICE), asked, strict=False)):
        allowed = [(o, f) for o, (_i, f) in part if o is not None and o.allowed]
        revealed = iter(_reveal(enforcer, allowed))
        for outcome, (item, fields) in part:
            if outcome is None:
                yield _problem_line(item, unknown_subject())
            elif not outcome.allowed:
                yield _problem_line(item, outcome.denied())
            else:
                released = next(revealed)
                if isinstance(released, Problem):
                    yield _problem_line(item, released)
                else:
                    answer = query_answer(outcome, fields, released)
                    yield _line(item, 200, answer.model_dump_json())


def _reveal(
    enforcer: Enforcer, asks: list[tuple[Outcome, list[str]]]
) -> list[dict[str, object] | Problem]:
    """The slice's released values through one vault read; should a record change under it
    (erased since its decision), each item alone, so that only that item fails, as its single
    request would have."""
    try:
        return list(enforcer.reveal_many(asks))
    except VaultError:
        pass  # answered item by item below
    each: list[dict[str, object] | Problem] = []
    for ask in asks:
        try:
            each.append(enforcer.reveal(*ask))
        except VaultError:
            each.append(_item_failed())
    return each


def _item_failed() -> Problem:
    """An item whose record changed between its decision and its read: the 500 its single
    request would have answered, for that item only."""
    return Problem(500, "internal-error", "The server could not complete this item.")


@router.post(
    "/eligibility",
    response_class=StreamingResponse,
    responses=_streamed("One line per item, in order: the single eligibility route's answer"),
    summary="Items (pseudonym) + program + purpose → eligible or not per item, streamed",
)
def eligibility_batch(
    body: BatchEligibilityIn,
    enforcer: Enforcer = Depends(authorize("eligibility", kinds=["agency"], per_item=True)),
    services: Services = Depends(get_services),
) -> Response:
    _bounded(body.items)
    enforcer.charge(len(body.items))
    resource: Resource = {"kind": "household", "fields": [], "program": body.program}
    registered_purpose(enforcer, resource, body.purpose)
    questions, found = _questions(
        services,
        enforcer,
        [i.pseudonym for i in body.items],
        [resource] * len(body.items),
        lambda subjects: [subjects.household] if subjects.household else [],
    )
    households = [None if f is None else f.household for f in found]
    outcomes = enforcer.decide_many(body.purpose, questions)
    return _stream(_eligibility_lines(services, outcomes, households))


def _eligibility_lines(
    services: Services, outcomes: Iterator[Outcome | None], households: Sequence[str | None]
) -> Iterator[str]:
    asked = iter(enumerate(households))
    while part := list(zip(islice(outcomes, SEAL_SLICE), asked, strict=False)):
        decided = [(o, household) for o, (_i, household) in part if o is not None]
        answers = iter(eligibility_answers(services, decided))
        for outcome, (item, _household) in part:
            if outcome is None:
                yield _problem_line(item, unknown_subject())
                continue
            answer = next(answers)
            if isinstance(answer, Problem):
                yield _problem_line(item, answer)
            elif isinstance(answer, VaultError):
                yield _problem_line(item, _item_failed())
            else:
                yield _line(item, 200, answer.model_dump_json())
