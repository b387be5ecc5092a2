"""Delivery of signed consent-status notifications to agencies, with retries and backoff.

The outbox row is written in the same transaction as the consent change (transactional
outbox), so a notification is never lost nor sent for a change that did not happen. Several
delivery workers may run: a row is claimed by moving its next attempt forward with a
conditional UPDATE, which only one worker can win.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, and_, insert, select, update

from consent import tables

log = logging.getLogger("sijill.consent.outbox")
SECOND_NS = 1_000_000_000
# Exponential backoff: 1 s, 2 s, 4 s … capped at one hour; give up after a day of tries.
BASE_DELAY_S = 1.0
MAX_DELAY_S = 3600.0
MAX_ATTEMPTS = 24
LEASE_S = 30.0

# send(url, body) -> HTTP status code; raises OSError (or httpx errors) on transport failure.
Sender = Callable[[str, str], int]
EndpointFor = Callable[[str], str | None]


@dataclass(frozen=True)
class Delivery:
    id: int
    recipient: str
    status: int | None
    delivered: bool


def backoff_s(attempts: int, rng: random.Random | None = None) -> float:
    delay: float = min(MAX_DELAY_S, BASE_DELAY_S * float(2 ** max(0, attempts - 1)))
    # Full jitter keeps many failing deliveries from retrying in lockstep.
    jitter: float = (rng or random.Random()).random()
    return delay * (0.5 + jitter / 2)


class Outbox:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def set_endpoint(self, recipient: str, url: str) -> None:
        """Register where ``recipient`` receives notifications (https, or loopback http)."""
        if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ValueError("the endpoint must be an https URL")
        t = tables.endpoints
        now = time.time_ns()
        with self._engine.begin() as conn:
            changed = conn.execute(
                update(t).where(t.c.recipient == recipient).values(url=url, updated_at_ns=now)
            ).rowcount
            if changed == 0:
                conn.execute(insert(t).values(recipient=recipient, url=url, updated_at_ns=now))

    def endpoints(self) -> dict[str, str]:
        with self._engine.connect() as conn:
            return {r.recipient: r.url for r in conn.execute(select(tables.endpoints))}

    def endpoint_for(self, recipient: str) -> str | None:
        return self.endpoints().get(recipient)

    def pending(self) -> int:
        query = select(tables.outbox.c.id).where(tables.outbox.c.delivered_at_ns.is_(None))
        with self._engine.connect() as conn:
            return len(conn.execute(query).all())

    def deliver_due(
        self,
        send: Sender,
        endpoint_for: EndpointFor,
        *,
        now_ns: int | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        now = time.time_ns() if now_ns is None else now_ns
        t = tables.outbox
        due = (
            select(t.c.id, t.c.recipient, t.c.body, t.c.attempts, t.c.next_attempt_ns)
            .where(
                and_(
                    t.c.delivered_at_ns.is_(None),
                    t.c.next_attempt_ns <= now,
                    t.c.attempts < MAX_ATTEMPTS,
                )
            )
            .order_by(t.c.id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(due).all()
        results = []
        for row in rows:
            if not self._claim(row.id, row.next_attempt_ns, now):
                continue
            url = endpoint_for(row.recipient)
            status: int | None = None
            if url is not None:
                try:
                    status = send(url, row.body)
                except Exception as exc:  # transport failure: retried like a 5xx
                    log.warning(
                        "notification delivery failed",
                        extra={"recipient": row.recipient, "error_class": type(exc).__name__},
                    )
            delivered = status is not None and 200 <= status < 300
            attempts = row.attempts + 1
            values: dict[str, object] = {"attempts": attempts, "last_status": status}
            if delivered:
                values["delivered_at_ns"] = time.time_ns()
            else:
                values["next_attempt_ns"] = now + int(backoff_s(attempts) * SECOND_NS)
            with self._engine.begin() as conn:
                conn.execute(update(t).where(t.c.id == row.id).values(**values))
            results.append(Delivery(row.id, row.recipient, status, delivered))
        return results

    def _claim(self, row_id: int, seen_next: int, now: int) -> bool:
        t = tables.outbox
        lease = now + int(LEASE_S * SECOND_NS)
        with self._engine.begin() as conn:
            claimed = conn.execute(
                update(t)
                .where(
                    and_(
                        t.c.id == row_id,
                        t.c.next_attempt_ns == seen_next,
                        t.c.delivered_at_ns.is_(None),
                    )
                )
                .values(next_attempt_ns=lease)
            )
        return claimed.rowcount == 1
