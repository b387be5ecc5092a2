"""Leases: one process at a time, across processes and hosts, does a named job.

A lease is a row of the main store's ``leases`` table: its holder, its expiry and a fencing
token. :meth:`Lease.acquire` takes the lease when it is free or expired, or renews it when this
holder still has it, in one atomic upsert; a holder that crashes stops renewing and its lease
expires after ``ttl_s``. Every change of holder raises the token by one, so work fenced by the
token a holder was given is refused once another has taken over, however late the old holder
wakes up.

Fencing (:meth:`Lease.fenced`): a transaction on the lease's store, begun only if this holder's
lease is still live, in which it cannot change hands: PostgreSQL locks the row FOR SHARE, so a
takeover waits for the transaction to end (and the session is cut if it idles inside for
longer than the lease, so a stalled holder cannot keep it); SQLite takes the database's write
lock. Writes made on that connection are fenced: they commit only under the live lease.
:meth:`Lease.guard` fences work done elsewhere (the audit log's own store): on PostgreSQL the
same row lock, held while the work runs; on SQLite, whose processes share one host and one
file, the lease is checked at the start only, since holding the write lock would block the work.

Times are the database's clock on PostgreSQL (hosts whose clocks disagree agree on expiry) and
this host's on SQLite. The checkpointer (gateway/witnessing.py) signs under the lease
``audit-checkpoints``; scheduled jobs (retention, notification delivery) take leases of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from storekit.claims import clock_params, holder_name, now_sql, write_transaction

log = logging.getLogger("sijill.leases")

# ``excluded.expires_at - :ttl`` is this statement's "now". A live lease changes nothing unless
# this holder has it (then only its expiry moves); an expired one goes to this holder with the
# next token.
_ACQUIRE = """
INSERT INTO leases AS l (name, holder, token, expires_at)
VALUES (:name, :holder, 1, {now} + :ttl)
ON CONFLICT (name) DO UPDATE SET
    token = CASE WHEN l.expires_at > excluded.expires_at - :ttl THEN l.token
                 ELSE l.token + 1 END,
    holder = excluded.holder,
    expires_at = excluded.expires_at
WHERE l.expires_at <= excluded.expires_at - :ttl OR (l.holder = :holder AND l.token = :token)
RETURNING token
"""
_HELD = """
SELECT token FROM leases
WHERE name = :name AND holder = :holder AND token = :token AND expires_at > {now}{lock}
"""
_RELEASE = """
UPDATE leases SET expires_at = 0 WHERE name = :name AND holder = :holder AND token = :token
"""
LOCK_WAIT_S = 2  # PostgreSQL: longest wait for a lease row another process holds locked
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE when that wait runs out


class LeaseLost(Exception):
    """This holder does not hold the lease (never took it, or it expired and another took it)."""


class Lease:
    """The lease ``name`` on ``engine`` (the main store), for this process."""

    def __init__(self, engine: Engine, name: str, *, ttl_s: float) -> None:
        if ttl_s <= 0:
            raise ValueError("a lease lasts a positive number of seconds")
        self.engine = engine
        self.name = name
        self.ttl_s = ttl_s
        # Unique to this object: two leases of one process are two holders.
        self.holder = holder_name()
        self.token = 0  # the fencing token while held; 0 when this holder has none
        self._postgres = engine.dialect.name == "postgresql"
        now = now_sql(engine)
        self._acquire = text(_ACQUIRE.format(now=now))
        self._held = text(_HELD.format(now=now, lock=" FOR SHARE" if self._postgres else ""))
        self._release = text(_RELEASE)

    def _params(self) -> dict[str, object]:
        return {
            "name": self.name,
            "holder": self.holder,
            "token": self.token,
            "ttl": self.ttl_s,
            **clock_params(self.engine),
        }

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        with write_transaction(self.engine) as conn:
            if self._postgres:
                # A takeover waits for a fenced holder's transaction, but not forever.
                conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_WAIT_S}s'"))
            yield conn

    def acquire(self) -> bool:
        """Take the lease if it is free or expired, renew it if this holder has it; whether
        this holder has it now. A lease row locked by a fenced holder counts as taken."""
        try:
            with self._transaction() as conn:
                row = conn.execute(self._acquire, self._params()).first()
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
                self.token = 0
                return False
            raise
        if row is None:
            self.token = 0
            return False
        if int(row[0]) != self.token and self.token:
            log.warning("lease lapsed and taken again", extra={"lease": self.name})
        self.token = int(row[0])
        return True

    def release(self) -> None:
        """Give the lease up (a clean stop), so another process takes it at once."""
        if not self.token:
            return
        with self._transaction() as conn:
            conn.execute(self._release, self._params())
        self.token = 0

    @contextmanager
    def fenced(self) -> Iterator[Connection]:
        """A transaction on the lease's store in which this holder's lease is live and cannot
        change hands; raise :class:`LeaseLost` if it is not live at the start."""
        with self._transaction() as conn:
            if self._postgres:
                # A holder stalled inside for longer than the lease loses its session (and the
                # transaction's writes): it cannot keep the lease by holding the row.
                ms = max(1, int(self.ttl_s * 1000))
                conn.execute(text(f"SET LOCAL idle_in_transaction_session_timeout = {ms}"))
            if conn.execute(self._held, self._params()).first() is None:
                self.token = 0
                raise LeaseLost(f"lease {self.name!r} is not held by this process")
            yield conn

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Fence work done on another store: raise :class:`LeaseLost` if the lease is not live;
        on PostgreSQL it cannot change hands until the block ends (see the module docstring
        for SQLite)."""
        if self._postgres:
            with self.fenced():
                yield
            return
        with self.engine.connect() as conn:
            held = conn.execute(self._held, self._params()).first()
            conn.rollback()
        if held is None:
            self.token = 0
            raise LeaseLost(f"lease {self.name!r} is not held by this process")
        yield
