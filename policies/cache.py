"""Decisions reused until the policy's own horizon (issue 22, "policy-horizon decision cache").

A regulator asks of each access: was it allowed under the rules in force, for this input? The
policy states with each decision until when its answer holds (``valid_until_ns``: the next
instant at which a declaration takes effect or lapses, or a consent expires). For the same
policy revision and the same input but for its time, an evaluation made at ``t0`` answers
identically at any ``t`` with ``t0 <= t < valid_until_ns``; :class:`DecisionCache` hands that
answer back instead of evaluating again.

Each request still gets its own decision id (and so its own audit entry); the result names
the evaluation it repeats (:attr:`PolicyResult.reused`), whose entry holds the evaluation
itself. Never cached: errors, inputs without a time, decisions without a horizon. Bounded (the
least recently used goes first), per process, emptied when the engine loads a new revision.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import replace

from policies.engine import PolicyEngine, PolicyResult


class DecisionCache:
    """A :class:`PolicyEngine` that reuses ``engine``'s decisions within their horizon."""

    def __init__(self, engine: PolicyEngine, max_entries: int = 10_000) -> None:
        self.engine = engine
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[int, PolicyResult]] = OrderedDict()
        self._revision: str | None = None
        self._lock = threading.Lock()

    @property
    def revision(self) -> str:
        return self.engine.revision

    def __len__(self) -> int:
        return len(self._entries)

    def decide(self, input: Mapping[str, object]) -> PolicyResult:
        now = input.get("time_ns")
        if type(now) is not int or self.max_entries <= 0:
            return self.engine.decide(input)
        revision = self.engine.revision
        key = _key(revision, input)
        if key is None:
            return self.engine.decide(input)
        with self._lock:
            if revision != self._revision:
                # A new revision: none of the old answers was given under its rules.
                self._entries.clear()
                self._revision = revision
            found = self._entries.get(key)
            if found is not None:
                evaluated_at, result = found
                horizon = result.valid_until_ns
                if horizon is not None and evaluated_at <= now < horizon:
                    self._entries.move_to_end(key)
                    return replace(result, decision_id=str(uuid.uuid4()), reused=result.decision_id)
                if horizon is None or now >= horizon:
                    del self._entries[key]  # past its horizon: it never answers again
        result = self.engine.decide(input)  # raises on error: nothing is cached then
        if result.valid_until_ns is not None and result.policy_revision == revision:
            with self._lock:
                if revision == self._revision:
                    self._entries[key] = (now, result)
                    self._entries.move_to_end(key)
                    while len(self._entries) > self.max_entries:
                        self._entries.popitem(last=False)
        return result

    def ping(self) -> None:
        self.engine.ping()


def _key(revision: str, input: Mapping[str, object]) -> str | None:
    """The policy revision and the input without its time, canonically written (the same
    input in another key order is the same question); None for an input that is not plain
    JSON, which is then never cached."""
    rest = {k: v for k, v in input.items() if k != "time_ns"}
    try:
        return revision + "\n" + json.dumps(rest, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return None
