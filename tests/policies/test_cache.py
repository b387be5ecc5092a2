"""The policy's horizon and the decision cache built on it: a decision is the same at every
instant before its ``valid_until_ns``, may differ from it on, and the cache never answers
past a horizon, across a reload, for an error, or without a time."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies import DecisionCache, EmbeddedEngine, PolicyResult, PolicyUnavailable
from tests.policies.corpus import generate

CORPUS = generate(seed=9_08, count=160)


@pytest.fixture(scope="module")
def engine() -> EmbeddedEngine:
    return EmbeddedEngine()


def at(doc: Mapping[str, Any], time_ns: int) -> dict[str, Any]:
    return {**doc, "time_ns": time_ns}


def bounded(engine: EmbeddedEngine) -> list[tuple[dict[str, Any], PolicyResult]]:
    out = []
    for doc in CORPUS:
        if "time_ns" in doc:
            result = engine.decide(doc)
            if result.valid_until_ns is not None:
                out.append((doc, result))
    return out


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pick=st.integers(min_value=0), offset=st.integers(min_value=0, max_value=2**64))
def test_a_decision_is_the_same_at_every_instant_before_its_horizon(
    engine: EmbeddedEngine, pick: int, offset: int
) -> None:
    cases = bounded(engine)
    doc, first = cases[pick % len(cases)]
    assert first.valid_until_ns is not None
    start = doc["time_ns"]
    later = start + offset % (first.valid_until_ns - start)
    assert start <= later < first.valid_until_ns
    assert engine.decide(at(doc, later)).document() == first.document()
    assert engine.decide(at(doc, first.valid_until_ns - 1)).document() == first.document()


def test_decisions_change_only_where_a_horizon_said_they_may(engine: EmbeddedEngine) -> None:
    cases = bounded(engine)
    assert len(cases) >= len(CORPUS) // 2  # the corpus is mostly time-bound
    changed = [
        doc
        for doc, first in cases
        if engine.decide(at(doc, first.valid_until_ns or 0)).document() != first.document()
    ]
    # At the horizon the answer may change, and for consents and declarations ending it does.
    assert changed


class Counting:
    """An engine that answers from a script and counts its evaluations."""

    def __init__(self, horizon: int | None, revision: str = "r1") -> None:
        self.horizon = horizon
        self.revision = revision
        self.calls = 0
        self.fail = False

    def decide(self, input: Mapping[str, object]) -> PolicyResult:
        self.calls += 1
        if self.fail:
            raise PolicyUnavailable("down")
        return PolicyResult(
            allow=True,
            fields=("phone",),
            obligations={},
            reasons=[],
            legal_basis={"type": "law"},
            decision_id=str(uuid.uuid4()),
            policy_revision=self.revision,
            valid_until_ns=self.horizon,
        )

    def ping(self) -> None:
        return None


DOC = {"subject": {"kind": "agency"}, "action": "read_attributes", "purpose": "asd_payment"}


def test_a_reused_decision_has_its_own_id_and_names_the_evaluation() -> None:
    inner = Counting(horizon=1_000)
    cache = DecisionCache(inner)
    first = cache.decide(at(DOC, 10))
    again = cache.decide(at(DOC, 999))
    assert inner.calls == 1
    assert again.reused == first.decision_id and first.reused is None
    assert again.decision_id != first.decision_id
    assert again.document() == first.document()


def test_a_cached_decision_never_answers_at_or_past_its_horizon_nor_before_it_was_made() -> None:
    inner = Counting(horizon=1_000)
    cache = DecisionCache(inner)
    cache.decide(at(DOC, 500))
    assert cache.decide(at(DOC, 499)).reused is None  # earlier than its evaluation
    assert cache.decide(at(DOC, 1_000)).reused is None
    assert inner.calls == 3


def test_a_new_revision_empties_the_cache() -> None:
    inner = Counting(horizon=1_000)
    cache = DecisionCache(inner)
    cache.decide(at(DOC, 10))
    inner.revision = "r2"
    assert cache.decide(at(DOC, 11)).reused is None
    assert len(cache) == 1 and inner.calls == 2


def test_an_error_is_never_cached() -> None:
    inner = Counting(horizon=1_000)
    cache = DecisionCache(inner)
    inner.fail = True
    with pytest.raises(PolicyUnavailable):
        cache.decide(at(DOC, 10))
    assert len(cache) == 0
    inner.fail = False
    assert cache.decide(at(DOC, 11)).reused is None  # evaluated, not a remembered failure
    assert inner.calls == 2


@pytest.mark.parametrize("case", ["no_horizon", "no_time"])
def test_unbounded_decisions_and_timeless_inputs_are_never_cached(case: str) -> None:
    inner = Counting(horizon=None if case == "no_horizon" else 1_000)
    cache = DecisionCache(inner)
    doc: Mapping[str, object] = DOC if case == "no_time" else at(DOC, 10)
    cache.decide(doc)
    assert cache.decide(doc).reused is None
    assert len(cache) == 0 and inner.calls == 2


def test_the_cache_keeps_at_most_its_bound_and_keys_on_the_whole_input() -> None:
    inner = Counting(horizon=1_000)
    cache = DecisionCache(inner, max_entries=3)
    for purpose in itertools.islice(itertools.cycle(["a", "b", "c", "d"]), 8):
        cache.decide({**at(DOC, 10), "purpose": purpose})
    assert len(cache) == 3
    # The same question in another key order is the same question; another consent is not.
    cache.decide({"time_ns": 20, **DOC})
    before = inner.calls
    assert cache.decide({"purpose": "asd_payment", **at(DOC, 21)}).reused is not None
    assert cache.decide({**at(DOC, 22), "consents": [{"id": "c"}]}).reused is None
    assert inner.calls == before + 1


def test_a_real_consent_expiry_ends_the_reuse(engine: EmbeddedEngine) -> None:
    now = 1795910400000000000
    doc = {
        "subject": {
            "kind": "agency",
            "client_id": "ms_sante",
            "agency": "ms_sante",
            "sector": "health",
            "scopes": ["agency:query"],
        },
        "action": "read_attributes",
        "resource": {"kind": "person", "fields": ["phone"]},
        "purpose": "maternal_health_followup",
        "consents": [
            {
                "id": "c",
                "purpose": "maternal_health_followup",
                "fields": ["phone"],
                "expires_at": now + 5,
            }
        ],
        "objections": [],
    }
    cache = DecisionCache(engine)
    assert cache.decide(at(doc, now)).allow
    assert cache.decide(at(doc, now + 4)).reused is not None
    expired = cache.decide(at(doc, now + 5))
    assert expired.reused is None and not expired.allow
