"""Domain metrics for Prometheus: what the gateway decided, revealed, refused and logged.

Counters and histograms are updated where each event happens (the policy engine's answer, a
decision the vault accepted before a reveal, a rate-limit refusal); the audit log's size, its
newest checkpoint's age and its unsigned tail are read from the store at scrape time, so every
worker process reports the shared log, not its own memory of it. No label ever carries a
subject, a field value or a client-supplied string.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from audit import AuditLog
from policies import PolicyEngine, PolicyResult, PolicyUnavailable
from vault import Decision, DecisionVerifier

log = logging.getLogger("sijill.metrics")


class DomainMetrics(Collector):
    """One per process's services; registered into each app's registry by ``create_app``."""

    def __init__(self) -> None:
        self.decisions = Counter(
            "sijill_policy_decisions",
            "Policy decisions by outcome (allow, deny, error: the engine could not decide)",
            ["outcome"],
            registry=None,
        )
        self.decision_seconds = Histogram(
            "sijill_policy_decision_seconds",
            "Time the policy engine took to decide",
            registry=None,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
        )
        self.reveals = Counter(
            "sijill_vault_reveals",
            "Subjects whose released fields the vault decrypted under a verified decision",
            registry=None,
        )
        self.rate_limited = Counter(
            "sijill_rate_limited_requests",
            "Requests refused by a client's rate limit (429)",
            registry=None,
        )
        self.audit: AuditLog | None = None

    def collect(self) -> Iterator[Metric]:
        for metric in (self.decisions, self.decision_seconds, self.reveals, self.rate_limited):
            yield from metric.collect()
        yield from self._audit_gauges()

    def _audit_gauges(self) -> Iterator[Metric]:
        if self.audit is None:
            return
        try:
            size = self.audit.size()
            latest = self.audit.storage.latest_checkpoint()
        except Exception as exc:
            # A scrape must not fail with the store: /readyz reports it, the gauges go absent.
            log.warning("audit metrics unavailable", extra={"error_class": type(exc).__name__})
            return
        yield GaugeMetricFamily("sijill_audit_log_entries", "Entries in the audit log", size)
        signed = latest.tree_size if latest is not None else 0
        yield GaugeMetricFamily(
            "sijill_audit_unsigned_entries",
            "Audit entries no signed checkpoint covers yet",
            max(0, size - signed),
        )
        if latest is not None:
            yield GaugeMetricFamily(
                "sijill_audit_checkpoint_age_seconds",
                "Seconds since the newest signed checkpoint",
                max(0.0, time.time() - latest.timestamp_ns / 1e9),
            )


class MeteredPolicy:
    """A :class:`policies.PolicyEngine` that counts and times the engine it wraps."""

    def __init__(self, engine: PolicyEngine, metrics: DomainMetrics) -> None:
        self.engine = engine
        self._metrics = metrics

    @property
    def revision(self) -> str:
        return self.engine.revision

    def decide(self, input: Mapping[str, object]) -> PolicyResult:
        started = time.perf_counter()
        try:
            result = self.engine.decide(input)
        except PolicyUnavailable:
            self._metrics.decisions.labels("error").inc()
            raise
        finally:
            self._metrics.decision_seconds.observe(time.perf_counter() - started)
        self._metrics.decisions.labels("allow" if result.allow else "deny").inc()
        return result

    def ping(self) -> None:
        self.engine.ping()


class CountedDecisionVerifier(DecisionVerifier):
    """The vault's decision check, counting the decisions it accepts: each one is a subject
    whose released fields are about to be decrypted."""

    def __init__(self, verifier: DecisionVerifier, metrics: DomainMetrics) -> None:
        self._inner = verifier
        self._metrics = metrics

    def verify(self, decision: Decision, subject: str, *, now_ns: int | None = None) -> None:
        self._inner.verify(decision, subject, now_ns=now_ns)
        self._metrics.reveals.inc()
