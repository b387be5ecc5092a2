"""The court orders an authorised office entered, read and revoked; each change records the
audit entry of the decision that allowed it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.court_orders.tables import court_orders
from identity.oauth import ClientRegistry

# A court's reference for an order, as it travels in a path segment, a query and the log.
REFERENCE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$"


class CourtOrderNotFound(LookupError):
    """No order under this reference."""


class CourtOrderExists(ValueError):
    """An order under this reference is already in the register."""


@dataclass(frozen=True)
class Revocation:
    at_ns: int
    by: str
    audit_index: int


@dataclass(frozen=True)
class CourtOrder:
    reference: str
    court: str
    issued_at_ns: int
    office: str
    officer: str
    client_id: str
    subject: str
    pseudonym: str
    fields: tuple[str, ...]
    purposes: tuple[str, ...]
    valid_until_ns: int
    embargo_until_ns: int
    entered_at_ns: int = 0
    audit_index: int = -1
    revocation: Revocation | None = None

    def policy_input(self) -> dict[str, Any]:
        """``input.court_order`` of policies/court_orders.rego."""
        return {
            "reference": self.reference,
            "client_id": self.client_id,
            "subject": self.subject,
            "fields": list(self.fields),
            "purposes": list(self.purposes),
            "issued_at_ns": self.issued_at_ns,
            "valid_until_ns": self.valid_until_ns,
            "embargo_until_ns": self.embargo_until_ns,
            "revoked": self.revocation is not None,
        }

    def audit_record(self) -> dict[str, str]:
        """What an audit entry made under this order says of it (audit.AuditEntry)."""
        return {"reference": self.reference, "embargo_until_ns": str(self.embargo_until_ns)}


@dataclass(frozen=True)
class UnderOrder:
    """A request made under a court order: ``order`` is the register's order under the
    reference it named, None when it named no order of this caller (the policy refuses)."""

    order: CourtOrder | None

    def policy_input(self) -> dict[str, Any] | None:
        return self.order.policy_input() if self.order is not None else None

    def audit_record(self) -> dict[str, str] | None:
        return self.order.audit_record() if self.order is not None else None


def _order(row: Any) -> CourtOrder:
    revocation = (
        Revocation(row.revoked_at_ns, row.revoked_by, row.revocation_audit_index)
        if row.revoked_at_ns is not None
        else None
    )
    return CourtOrder(
        reference=row.reference,
        court=row.court,
        issued_at_ns=row.issued_at_ns,
        office=row.office,
        officer=row.officer,
        client_id=row.client_id,
        subject=row.subject,
        pseudonym=row.pseudonym,
        fields=tuple(json.loads(row.fields)),
        purposes=tuple(json.loads(row.purposes)),
        valid_until_ns=row.valid_until_ns,
        embargo_until_ns=row.embargo_until_ns,
        entered_at_ns=row.entered_at_ns,
        audit_index=row.audit_index,
        revocation=revocation,
    )


class CourtOrderRegister:
    def __init__(self, engine: Engine, *, clock: Callable[[], int] = time.time_ns) -> None:
        self._engine = engine
        # Nanoseconds since the epoch: when an embargo has ended, for the person's own view
        # of the log; replaceable so that embargoes can be tested.
        self.clock = clock

    def enter(self, order: CourtOrder, audit_index: int) -> CourtOrder:
        entered = time.time_ns()
        values = {
            "reference": order.reference,
            "court": order.court,
            "issued_at_ns": order.issued_at_ns,
            "office": order.office,
            "officer": order.officer,
            "client_id": order.client_id,
            "subject": order.subject,
            "pseudonym": order.pseudonym,
            "fields": json.dumps(sorted(order.fields)),
            "purposes": json.dumps(sorted(order.purposes)),
            "valid_until_ns": order.valid_until_ns,
            "embargo_until_ns": order.embargo_until_ns,
            "entered_at_ns": entered,
            "audit_index": audit_index,
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(court_orders).values(**values))
        except IntegrityError:
            raise CourtOrderExists(order.reference) from None
        return self.get(order.reference)

    def find(self, reference: str) -> CourtOrder | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(court_orders).where(court_orders.c.reference == reference)
            ).one_or_none()
        return _order(row) if row is not None else None

    def get(self, reference: str) -> CourtOrder:
        found = self.find(reference)
        if found is None:
            raise CourtOrderNotFound(reference)
        return found

    def list(self, *, client_id: str | None = None) -> list[CourtOrder]:
        query = select(court_orders).order_by(court_orders.c.entered_at_ns)
        if client_id is not None:
            query = query.where(court_orders.c.client_id == client_id)
        with self._engine.connect() as conn:
            return [_order(row) for row in conn.execute(query)]

    def embargoed_sectors(self, subject: str, clients: ClientRegistry) -> frozenset[str]:
        """The sectors of the clients holding an order about ``subject`` (a keyed tag) whose
        embargo has not ended: what the person's own view leaves out until it does."""
        now = self.clock()
        query = select(court_orders.c.client_id).where(
            court_orders.c.subject == subject, court_orders.c.embargo_until_ns > now
        )
        with self._engine.connect() as conn:
            ids = {row.client_id for row in conn.execute(query)}
        found = (clients.get(client_id) for client_id in sorted(ids))
        return frozenset(client.sector for client in found if client is not None)

    def revoke(self, reference: str, by: str, audit_index: int) -> CourtOrder:
        """Revoke an order once; a second revocation keeps the first's record."""
        with self._engine.begin() as conn:
            conn.execute(
                update(court_orders)
                .where(
                    court_orders.c.reference == reference,
                    court_orders.c.revoked_at_ns.is_(None),
                )
                .values(
                    revoked_at_ns=time.time_ns(),
                    revoked_by=by,
                    revocation_audit_index=audit_index,
                )
            )
        return self.get(reference)
