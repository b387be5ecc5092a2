"""What a claim on a row (a lease, a batch of an import) needs on either database: one clock
every host agrees on, a holder's name, and a transaction that writes under the write lock.

PostgreSQL's clock (``clock_timestamp()``, seconds since the epoch) is the claims' clock there,
so hosts whose clocks disagree agree on expiry; SQLite's processes share one host and read its
clock. Knows no table: the callers' statements name theirs.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

__all__ = ["clock_params", "holder_name", "now_sql", "write_transaction"]

_PG_NOW = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"


def now_sql(engine: Engine) -> str:
    """SQL for "now", in seconds since the epoch: the database's clock on PostgreSQL, the bound
    parameter ``:now`` (:func:`clock_params`) on SQLite."""
    return _PG_NOW if engine.dialect.name == "postgresql" else ":now"


def clock_params(engine: Engine) -> dict[str, object]:
    """The parameters :func:`now_sql` needs: this host's clock on SQLite, none on PostgreSQL."""
    return {} if engine.dialect.name == "postgresql" else {"now": time.time()}


def holder_name() -> str:
    """A claimant's name: host, process and a random part (two claimants of one process are
    two holders)."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the write lock from its first statement on SQLite (begun
    IMMEDIATE, so two claimants never both read a row free); PostgreSQL's writers lock the
    rows they touch."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            yield conn
    else:
        with engine.execution_options(sqlite_begin="IMMEDIATE").begin() as conn:
            yield conn
