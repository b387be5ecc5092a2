"""Security events on the record: refusals and configuration changes as audit entries.

A refused access token, client assertion, DPoP proof or client certificate, a failed sign-in
or a lockout, a rate-limit refusal, a policy anomaly and a change of the client registry each
append one entry to the audit log, under the action family ``security.<kind>``
(``SECURITY_KINDS``). The same log as the data accesses, so the events get the same Merkle
tree, checkpoints, witnesses and offline verification at no extra cost (docs/audit.md says why
not a second log).

An event holds no personal data and no secret (Law 09.08 art. 23, security of processing,
must not itself create a register of who tried to sign in): never a token, an IDCS or a
username, only

- ``actor``: the client the credential names when it is a registered client (claimed, not
  proven: that is what was refused), else the gateway;
- ``subject``: for a sign-in, a keyed tag of the account name under a label of its own (so it
  never matches the person's subject tag and never shows in their access log);
- ``reasons``: the refusal's stable code, then ``route=<template>``, ``source=<tag of the
  truncated address>`` and, for a summary, ``count=<n>``.

Recording never blocks and never fails the refusal it records: :meth:`SecurityEvents.record`
only counts in memory; the flush job (``gateway/jobs.py``, every worker process runs its own)
appends what was counted. An attacker cannot flood the log: per (kind, client or source) and
window, the first ``per_window`` events are appended one by one and the rest only counted;
when the window ends, one summary entry carries the true count of those. With N worker
processes each keeps its own buckets, so the log holds at most N times as many entries per
window; the counts stay true. A log that is down loses the events of that flush (logged and
counted in the metrics), never the refusal.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, get_args

from audit import AuditEntry, AuditLog, AuditUnavailable
from audit.entry import Actor

log = logging.getLogger("sijill.security")

SecurityKind = Literal[
    "token_refused",
    "client_assertion_refused",
    "dpop_refused",
    "certificate_refused",
    "sign_in_failed",
    "account_locked",
    "rate_limited",
    "policy_anomaly",
    "client_registered",
    "client_disabled",
    "pseudonym_key_rotated",
    "pseudonym_key_retired",
]
SECURITY_KINDS: tuple[SecurityKind, ...] = get_args(SecurityKind)
# Operators' changes, appended one by one (and not refusals: outcome allow).
CONFIGURATION_KINDS = frozenset(
    {"client_registered", "client_disabled", "pseudonym_key_rotated", "pseudonym_key_retired"}
)
ACTION_PREFIX = "security."
# Keys held per window beyond which every new (kind, client or source) shares one bucket: an
# attacker who varies the source cannot grow the table (or the log) without bound.
MAX_KEYS = 10_000
_GATEWAY: Actor = {"kind": "system", "id": "gateway", "sector": None}
_OVERFLOW = "*"


def security_action(kind: SecurityKind) -> str:
    """The audit action of a security event kind."""
    return ACTION_PREFIX + kind


@dataclass
class _Bucket:
    started: float
    appended: int = 0
    suppressed: int = 0
    # What the summary says of the events it counts (the first suppressed one's).
    actor: Actor = field(default_factory=lambda: _GATEWAY)
    reasons: list[str] = field(default_factory=list)
    subject: str | None = None


class SecurityEvents:
    """Counts security events in memory and appends them, bounded, at each :meth:`flush`."""

    def __init__(
        self,
        audit: AuditLog,
        tag: Callable[[str, str], str],
        *,
        per_window: int = 5,
        window_s: float = 60.0,
        counted: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._audit = audit
        self._tag = tag
        self.per_window = per_window
        self.window_s = window_s
        self._counted = counted
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._queue: list[AuditEntry] = []

    def record(
        self,
        kind: SecurityKind,
        reason: str,
        *,
        actor: Actor | None = None,
        route: str | None = None,
        source: str | None = None,
        account: str | None = None,
    ) -> None:
        """Count one event; never raises, never waits on I/O (it runs on refusal paths)."""
        try:
            self._record(kind, reason, actor, route, source, account)
        except Exception:
            log.exception("security event not recorded", extra={"kind": kind})

    def _record(
        self,
        kind: SecurityKind,
        reason: str,
        actor: Actor | None,
        route: str | None,
        source: str | None,
        account: str | None,
    ) -> None:
        if self._counted is not None:
            self._counted(kind)
        who = actor or _GATEWAY
        reasons = [reason]
        if route:
            reasons.append(f"route={route}")
        source_tag = self._tag("security:source", truncated(source)) if source else None
        if source_tag:
            reasons.append(f"source={source_tag}")
        subject = self._tag("security:account", account) if account else None
        entry = AuditEntry(
            time_ns=time.time_ns(),
            actor=who,
            action=security_action(kind),
            subject=subject,
            outcome="allow" if kind in CONFIGURATION_KINDS else "deny",
            reasons=reasons,
        )
        # The bucket: the client when the credential names one, else the source.
        key = (kind, who["id"] if who is not _GATEWAY else (source_tag or "-"))
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= MAX_KEYS:
                    key = (kind, _OVERFLOW)
                    bucket = self._buckets.get(key)
                if bucket is None:
                    bucket = self._buckets[key] = _Bucket(started=now)
            if bucket.appended < self.per_window:
                bucket.appended += 1
                self._queue.append(entry)
                return
            if bucket.suppressed == 0:
                bucket.actor = who
                bucket.subject = subject
                bucket.reasons = [r for r in reasons if not r.startswith("source=")]
                if key[1] == _OVERFLOW:
                    bucket.reasons.append("source=many")
                elif source_tag:
                    bucket.reasons.append(f"source={source_tag}")
            bucket.suppressed += 1

    def flush(self, *, final: bool = False) -> int:
        """Append the events counted since the last flush, and one summary per bucket whose
        window ended (every bucket, if ``final``). Returns how many entries were appended."""
        now = self._clock()
        with self._lock:
            entries, self._queue = self._queue, []
            for key, bucket in list(self._buckets.items()):
                if not final and now - bucket.started < self.window_s:
                    continue
                del self._buckets[key]
                if bucket.suppressed:
                    entries.append(
                        AuditEntry(
                            time_ns=time.time_ns(),
                            actor=bucket.actor,
                            action=ACTION_PREFIX + key[0],
                            subject=bucket.subject,
                            outcome="deny",
                            reasons=["summary", *bucket.reasons, f"count={bucket.suppressed}"],
                        )
                    )
        if not entries:
            return 0
        try:
            self._audit.append_many(entries)
        except AuditUnavailable:
            # The refusals happened; only their record is lost (fail closed for data, not
            # for refusals). The metrics still count them.
            log.error("security events not appended: the audit log is unavailable")
            return 0
        return len(entries)


def configuration_change(kind: SecurityKind, **what: object) -> AuditEntry:
    """The entry of an operator's change (``sijill clients``, ``sijill pseudonyms``): one per
    change, appended at once and unbounded (a few a day), before the command reports success.
    ``what`` names what changed (``client=cnss``, ``sector=social``), never a person."""
    return AuditEntry(
        time_ns=time.time_ns(),
        actor={"kind": "system", "id": "operator", "sector": None},
        action=security_action(kind),
        subject=None,
        outcome="allow",
        reasons=[kind, *(f"{k}={v}" for k, v in what.items())],
    )


def truncated(address: str) -> str:
    """The network an address belongs to, not the address: IPv4 /24, IPv6 /48 (the host part
    identifies a subscriber; the network is enough to see an attack's origin)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def claimed_client(jwt_text: str) -> str | None:
    """The ``client_id`` (or ``iss``) a JWT claims, read WITHOUT checking anything: only to
    name, in a refusal's event, the client a refused credential pretends to be."""
    parts = jwt_text.split(".")
    if len(parts) != 3 or len(parts[1]) > 4096:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(payload, dict):
        return None
    value = payload.get("client_id", payload.get("iss"))
    return value if isinstance(value, str) and 0 < len(value) <= 64 else None


__all__ = [
    "ACTION_PREFIX",
    "SECURITY_KINDS",
    "SecurityEvents",
    "SecurityKind",
    "claimed_client",
    "configuration_change",
    "security_action",
    "truncated",
]
