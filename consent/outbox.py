"""The one notification outbox, with retries and backoff: signed consent-status notifications
to agencies, and the notices to citizens (activation codes, breach notices, accesses to their
record).

The outbox row is written in the same transaction as the change it reports (transactional
outbox), so a notification is never lost nor sent for a change that did not happen. Several
delivery workers may run: a row is claimed by moving its next attempt forward with a
conditional UPDATE, which only one worker can win. A row's ``event`` says whose it is: the
citizens' events (:data:`CITIZEN_EVENTS`) go to the person the row's ``recipient`` tags, by the
channel they chose; every other event goes to the agency the recipient names, at its endpoint.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, and_, delete, insert, select, update

from consent import tables

log = logging.getLogger("sijill.consent.outbox")
SECOND_NS = 1_000_000_000
# Exponential backoff: 1 s, 2 s, 4 s … capped at one hour; give up after a day of tries.
BASE_DELAY_S = 1.0
MAX_DELAY_S = 3600.0
MAX_ATTEMPTS = 24
LEASE_S = 30.0

# Notices to citizens; their rows' recipient is the person's audit tag (a keyed hash).
ACTIVATION = "activation"
BREACH_NOTICE = "breach_notice"
ACCESS_NOTICE = "access_notice"
CITIZEN_EVENTS = frozenset({ACTIVATION, BREACH_NOTICE, ACCESS_NOTICE})

# send(url, body) -> HTTP status code; raises OSError (or httpx errors) on transport failure.
Sender = Callable[[str, str], int]
EndpointFor = Callable[[str], str | None]


@dataclass(frozen=True)
class Item:
    """One row due for delivery."""

    id: int
    recipient: str
    event: str
    body: str
    attempts: int


# attempt(item) -> the status the transport answered, None when there was no one to send to;
# 2xx delivers (HTTP and SMTP agree on that); raises on a transport failure (retried).
Attempt = Callable[[Item], int | None]


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
        """Post the agencies' due notifications to their endpoints (a 2xx delivers)."""

        def post(item: Item) -> int | None:
            url = endpoint_for(item.recipient)
            return None if url is None else send(url, item.body)

        return self.deliver(post, citizens=False, now_ns=now_ns, limit=limit)

    def deliver(
        self,
        attempt: Attempt,
        *,
        citizens: bool,
        now_ns: int | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """Attempt each due row of the citizens' events (or of the agencies'), oldest first;
        a row not delivered is tried again after :func:`backoff_s`, until ``MAX_ATTEMPTS``."""
        now = time.time_ns() if now_ns is None else now_ns
        t = tables.outbox
        whose = t.c.event.in_(CITIZEN_EVENTS) if citizens else t.c.event.not_in(CITIZEN_EVENTS)
        due = (
            select(t.c.id, t.c.recipient, t.c.event, t.c.body, t.c.attempts, t.c.next_attempt_ns)
            .where(
                and_(
                    t.c.delivered_at_ns.is_(None),
                    t.c.next_attempt_ns <= now,
                    t.c.attempts < MAX_ATTEMPTS,
                    whose,
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
            item = Item(row.id, row.recipient, row.event, row.body, row.attempts)
            status: int | None = None
            try:
                status = attempt(item)
            except Exception as exc:  # transport failure: retried like a 5xx
                log.warning(
                    "notification delivery failed",
                    extra={"event": row.event, "error_class": type(exc).__name__},
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

    def drop_pending(self, recipient: str) -> int:
        """Delete every undelivered row addressed to ``recipient`` (a person's tag, when they
        opt out or are erased: nothing more goes out about them); how many went."""
        t = tables.outbox
        with self._engine.begin() as conn:
            return int(
                conn.execute(
                    delete(t).where(and_(t.c.recipient == recipient, t.c.delivered_at_ns.is_(None)))
                ).rowcount
            )

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
