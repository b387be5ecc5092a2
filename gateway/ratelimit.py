"""Per-client rate limits: a token bucket per client id, in this worker process.

With N workers an agency gets at most N times the configured rate; put the same limit at the
load balancer for a cluster-wide bound (docs/operations.md).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.problems import Problem


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(
        self, rate_per_s: float, burst: int, *, refused: Callable[[], None] | None = None
    ) -> None:
        self.rate = rate_per_s
        self.burst = burst
        self._refused = refused
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> float:
        """Spend one token; return 0 if allowed, else the seconds until one is available."""
        t = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(float(self.burst), t)
            bucket.tokens = min(float(self.burst), bucket.tokens + (t - bucket.updated) * self.rate)
            bucket.updated = t
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate

    def check(self, key: str) -> None:
        wait = self.take(key)
        if wait > 0:
            if self._refused is not None:
                self._refused()
            raise Problem(
                429,
                "rate-limited",
                "Too many requests from this client; retry later.",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
