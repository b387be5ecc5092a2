"""Per-agency rate limits: one token bucket per client id, shared by every process and host.

:class:`SharedRateLimiter` keeps the buckets in a table of the main store
(``agency_rate_buckets``) and spends a token in one atomic statement: an ``INSERT … ON CONFLICT
DO UPDATE … WHERE … RETURNING`` that refills the bucket for the time elapsed, takes a token (one
per item of a batch) if there are enough and leaves the row untouched otherwise. The row lock
that statement takes is the only coordination, so N workers on M hosts together allow the
configured rate, not N×M times it.

Why the database and not a rate-limiting library with a shared backend: every deployment already
has the main store, and every host already reaches it; a Redis (pyrate-limiter's and its kind's
shared backend) would be one more service to run, secure and keep available, and the gateway
fails closed when it is gone, so one more way to refuse every agency. pyrate-limiter's
PostgreSQL bucket keeps a row per request and counts a window (several statements and a growing
table per request, a schema it creates outside the migrations, a pool of its own); a bucket
needs one row per client and one statement. One round trip per agency request is what the bucket
costs (``bench/ratelimit.py`` prints it beside the in-process limiter's), beside the several a
lookup makes anyway. On PostgreSQL the table is UNLOGGED (no WAL, no disk flush per request) and
the time is the server's clock, so hosts whose clocks disagree still share one bucket; on SQLite
(a single-host deployment) the workers share the database file and the host's clock.

The gateway fails closed: a store that does not answer makes the request fail (503), as the
lookup behind it would. :class:`ProcessRateLimiter` is the same bucket in this process only, for
tools that run one process, and the baseline the benchmark compares with.
"""

from __future__ import annotations

import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, text

from gateway.problems import Problem
from storekit import hot_sql


class RateLimiter(ABC):
    """A token bucket per key: ``rate`` tokens a second, at most ``burst`` saved up.

    A request costs one token, a batch one per item: a batch of a thousand asks as much as a
    thousand single requests, so batching does not multiply an agency's allowed rate. A batch
    larger than the burst waits for a full bucket and leaves it in debt (it could never pass
    otherwise); the debt is repaid at the same rate before the next request passes.
    """

    def __init__(
        self, rate_per_s: float, burst: int, *, refused: Callable[[], None] | None = None
    ) -> None:
        self.rate = rate_per_s
        self.burst = burst
        self._refused = refused

    @abstractmethod
    def take(self, key: str, now: float | None = None, *, cost: int = 1) -> float:
        """Spend ``cost`` tokens; return 0 if allowed, else the seconds until they are."""

    def needed(self, cost: int) -> float:
        """The tokens the bucket must hold for a request of ``cost`` to pass."""
        return float(min(cost, self.burst))

    def check(self, key: str, *, cost: int = 1) -> None:
        """Spend ``cost`` tokens or raise the 429 problem (counted by ``refused``)."""
        self._answer(self.take(key, cost=cost))

    def _answer(self, wait: float) -> None:
        if wait > 0:
            if self._refused is not None:
                self._refused()
            raise Problem(
                429,
                "rate-limited",
                "Too many requests from this client; retry later.",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )


@dataclass
class _Bucket:
    tokens: float
    updated: float


class ProcessRateLimiter(RateLimiter):
    """The buckets in this process's memory: each process allows the whole rate."""

    def __init__(
        self, rate_per_s: float, burst: int, *, refused: Callable[[], None] | None = None
    ) -> None:
        super().__init__(rate_per_s, burst, refused=refused)
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None, *, cost: int = 1) -> float:
        t = time.monotonic() if now is None else now
        need = self.needed(cost)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(float(self.burst), t)
            bucket.tokens = min(float(self.burst), bucket.tokens + (t - bucket.updated) * self.rate)
            bucket.updated = t
            if bucket.tokens >= need:
                bucket.tokens -= cost
                return 0.0
            return (need - bucket.tokens) / self.rate


# The bucket refilled for the time since it was last spent, capped at the burst. ``excluded``
# is the row the INSERT proposed, whose updated_at is this statement's "now".
_REFILLED = "{least}(:burst, b.tokens + {greatest}(0, excluded.updated_at - b.updated_at) * :rate)"
_TAKE = """
INSERT INTO agency_rate_buckets AS b (client_id, tokens, updated_at)
VALUES (:key, :burst - :cost, {now})
ON CONFLICT (client_id) DO UPDATE SET
    tokens = {refilled} - :cost,
    updated_at = {greatest}(b.updated_at, excluded.updated_at)
WHERE {refilled} >= :need
RETURNING tokens
"""
_LEVEL = """
SELECT {least}(:burst, tokens + {greatest}(0, {now} - updated_at) * :rate)
FROM agency_rate_buckets WHERE client_id = :key
"""
_PG_NOW = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"


class SharedRateLimiter(RateLimiter):
    """The buckets in the main store: every process and host spends from the same one."""

    def __init__(
        self,
        engine: Engine,
        rate_per_s: float,
        burst: int,
        *,
        refused: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(rate_per_s, burst, refused=refused)
        self._postgres = engine.dialect.name == "postgresql"
        # Compiled once, run on a kept DBAPI connection (storekit): the bucket is on every
        # agency request's path.
        self._hot = hot_sql(engine)
        least, greatest = ("LEAST", "GREATEST") if self._postgres else ("min", "max")
        refilled = _REFILLED.format(least=least, greatest=greatest)
        self._take = {
            clock: text(_TAKE.format(now=now, refilled=refilled, greatest=greatest))
            for clock, now in (("server", _PG_NOW), ("given", ":now"))
        }
        self._level = {
            clock: text(_LEVEL.format(now=now, least=least, greatest=greatest))
            for clock, now in (("server", _PG_NOW), ("given", ":now"))
        }

    def take(self, key: str, now: float | None = None, *, cost: int = 1) -> float:
        """Spend ``cost`` tokens from ``key``'s shared bucket. ``now`` (seconds since the epoch)
        stands in for the clock; by default PostgreSQL's and, on SQLite, this host's."""
        need = self.needed(cost)
        params: dict[str, object] = {
            "key": key,
            "burst": float(self.burst),
            "rate": self.rate,
            "cost": float(cost),
            "need": need,
        }
        clock = "server" if self._postgres and now is None else "given"
        if clock == "given":
            params["now"] = time.time() if now is None else now
        if self._postgres:
            # One statement in autocommit: one round trip, no BEGIN/COMMIT. (A driver failure
            # runs it once more on a fresh connection: at worst a second token spent.)
            if self._hot.one(self._take[clock], **params) is not None:
                return 0.0
            row = self._hot.one(self._level[clock], **params)
        else:
            # The write lock up front: a deferred transaction could fail SQLITE_BUSY_SNAPSHOT.
            with self._hot.begin(immediate=True) as tx:
                if tx.one(self._take[clock], **params) is not None:
                    return 0.0
                row = tx.one(self._level[clock], **params)
        level = float(row[0]) if row is not None else 0.0
        # Another process may have refilled or spent since: never answer "now" to a refusal.
        return max((need - level) / self.rate, 1e-3)
