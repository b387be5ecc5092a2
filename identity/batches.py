"""A bulk import's batches: job rows that one worker at a time claims, fenced by a token.

An import file is cut into batches (ranges of its lines) recorded in ``rnp_import_batches``
when the job starts. A worker claims the first batch that is neither done nor claimed under a
live claim, in one atomic statement that raises the batch's fencing token by one and sets the
claim's expiry ``ttl_s`` ahead. The batch commits (:meth:`BatchClaims.complete`) in the same
transaction as its register rows, its rejects and its audit entries, and only if the claim is
still this worker's, with the same token, and not expired: a worker that stalled past its
claim (a pause, a swap storm, a lost network) and wakes up after another worker took the batch
over writes nothing, however late it wakes up; the rows of the batch are written once.

A worker killed outright (SIGKILL) leaves its claim to expire; the surviving workers, or a
later run of the same import, then take the batch. On PostgreSQL the claim skips a row whose
completing transaction holds it locked, and a takeover waits for such a transaction and then
sees the batch done; SQLite has one writer at a time. Times are the database's clock on
PostgreSQL (hosts whose clocks disagree agree on expiry) and this host's on SQLite, as for the
gateway's own leases (gateway/leases.py), whose scheme this is, for rows the identity room
owns; both take the clock, the holder's name and the write transaction from storekit.claims.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, func, select, text

from identity.tables import import_batches
from storekit.bulk import insert_rows
from storekit.claims import clock_params, holder_name, now_sql, write_transaction

__all__ = ["Batch", "BatchClaims", "BatchLost", "JobTotals", "job_totals", "plan_batches"]

_CLAIM = """
UPDATE rnp_import_batches SET holder = :holder, token = token + 1, expires_at = {now} + :ttl
WHERE job_id = :job AND done_at IS NULL AND expires_at <= {now} AND batch_no = (
    SELECT batch_no FROM rnp_import_batches
    WHERE job_id = :job AND done_at IS NULL AND expires_at <= {now}
    ORDER BY batch_no LIMIT 1{skip_locked})
RETURNING batch_no, first_line, last_line, token
"""
_COMPLETE = """
UPDATE rnp_import_batches
SET done_at = :done_at, enrolled = :enrolled, rejected = :rejected, expires_at = 0
WHERE job_id = :job AND batch_no = :batch_no AND holder = :holder AND token = :token
  AND done_at IS NULL AND expires_at > {now}
"""
_RELEASE = """
UPDATE rnp_import_batches SET expires_at = 0
WHERE job_id = :job AND batch_no = :batch_no AND holder = :holder AND token = :token
  AND done_at IS NULL
"""
_WAIT = """
SELECT count(*), min(expires_at) - {now} FROM rnp_import_batches
WHERE job_id = :job AND done_at IS NULL
"""


class BatchLost(Exception):
    """This worker's claim on the batch expired and the batch was (or may be) taken over: its
    transaction is rolled back and nothing of it is written."""


@dataclass(frozen=True)
class Batch:
    job_id: str
    number: int
    first_line: int
    last_line: int
    token: int

    @property
    def tag(self) -> str:
        """The batch's name on the enrolment saga's pending vault subjects: a worker that
        takes the batch over erases exactly what an earlier holder left half-written."""
        return f"{self.job_id[:48]}/{self.number}"


@dataclass(frozen=True)
class JobTotals:
    lines: int
    enrolled: int
    rejected: int
    batches_left: int


def plan_batches(
    conn: Connection, job_id: str, record_lines: Sequence[int], lines: int, batch_size: int
) -> int:
    """Record ``job_id``'s batches: ``batch_size`` records each (a record is numbered by its
    first line), together covering lines 1 to ``lines``; returns how many."""
    starts = list(record_lines[::batch_size])
    rows = [
        (job_id, number, 1 if number == 0 else first,
         starts[number + 1] - 1 if number + 1 < len(starts) else lines,
         None, 0, 0.0, 0, 0, None)
        for number, first in enumerate(starts)
    ]  # fmt: skip
    insert_rows(conn, import_batches, rows)
    return len(rows)


def job_totals(conn: Connection, job_id: str) -> JobTotals:
    """Lines, enrolments and rejects of the job's committed batches, and the batches left."""
    b = import_batches.c
    done = b.done_at.is_not(None)
    row = conn.execute(
        select(
            func.coalesce(func.sum(b.last_line - b.first_line + 1).filter(done), 0),
            func.coalesce(func.sum(b.enrolled), 0),
            func.coalesce(func.sum(b.rejected), 0),
            func.count().filter(b.done_at.is_(None)),
        ).where(b.job_id == job_id)
    ).one()
    return JobTotals(int(row[0]), int(row[1]), int(row[2]), int(row[3]))


class BatchClaims:
    """This worker's claims on the batches of ``job_id`` (each lasting ``ttl_s`` seconds)."""

    def __init__(self, engine: Engine, job_id: str, *, ttl_s: float) -> None:
        if ttl_s <= 0:
            raise ValueError("a claim lasts a positive number of seconds")
        self.engine = engine
        self.job_id = job_id
        self.ttl_s = ttl_s
        self.holder = holder_name()
        now = now_sql(engine)
        skip = " FOR UPDATE SKIP LOCKED" if engine.dialect.name == "postgresql" else ""
        self._claim = text(_CLAIM.format(now=now, skip_locked=skip))
        self._complete = text(_COMPLETE.format(now=now))
        self._release = text(_RELEASE)
        self._wait = text(_WAIT.format(now=now))

    def _params(self, **extra: object) -> dict[str, object]:
        return {"job": self.job_id, "holder": self.holder, **clock_params(self.engine), **extra}

    def claim(self) -> Batch | None:
        """The next batch for this worker (claimed until ``ttl_s`` from now), or None when
        every batch is done or claimed under a live claim."""
        with write_transaction(self.engine) as conn:
            row = conn.execute(self._claim, self._params(ttl=self.ttl_s)).first()
        if row is None:
            return None
        return Batch(self.job_id, int(row[0]), int(row[1]), int(row[2]), int(row[3]))

    def complete(self, conn: Connection, batch: Batch, *, enrolled: int, rejected: int) -> None:
        """Mark ``batch`` done in ``conn``'s transaction (the one committing its rows), or raise
        :class:`BatchLost` if this worker's claim on it is no longer live."""
        params = self._params(batch_no=batch.number, token=batch.token, enrolled=enrolled,
                              rejected=rejected, done_at=datetime.now(UTC))  # fmt: skip
        if conn.execute(self._complete, params).rowcount != 1:
            raise BatchLost(f"batch {batch.number}: the claim expired before the commit")

    def release(self, batch: Batch) -> None:
        """Give a batch up (this worker failed on it), so another takes it at once."""
        with write_transaction(self.engine) as conn:
            conn.execute(self._release, self._params(batch_no=batch.number, token=batch.token))

    def wait_s(self) -> float | None:
        """None when every batch is done; otherwise how long until the soonest live claim
        (another worker's, possibly a dead one's) expires."""
        with self.engine.connect() as conn:
            left, soonest = conn.execute(self._wait, self._params()).one()
        if not left:
            return None
        return max(0.0, float(soonest))
