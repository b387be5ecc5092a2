"""Planning a national rescoring: the job for a model release, cut into batches of
households in registration order.

Batches follow the registration order (``created_at``, then household id), which is the order
every table received the households' rows: a batch's rows lie together on disk. Household ids
are random; by id, each household of a batch would be on a page of its own.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    String,
    and_,
    insert,
    literal,
    select,
    text,
    tuple_,
)

from gateway.rescore.tables import batches, jobs
from gateway.settings import Settings
from rsu.tables import households
from vault import InvalidRecord, ModelSet

__all__ = [
    "PlannedBatch",
    "RescoreError",
    "job_prefix",
    "load_models",
    "plan",
    "writing",
]


class RescoreError(Exception):
    """A rescoring that cannot go on; the message says what the operator can do."""


def load_models(settings: Settings, version: str, models_dir: Path | None) -> ModelSet:
    """The model release ``version`` (from ``models_dir``, else the configured directory)."""
    try:
        return ModelSet.load(version, models_dir or settings.scoring_models_dir)
    except (InvalidRecord, OSError) as exc:
        raise RescoreError(str(exc)) from None


def job_prefix(models: ModelSet) -> str:
    """Ties a job to the exact model files: a resumed run with edited files is another job."""
    return hashlib.sha256((models.urban.digest + models.rural.digest).encode()).hexdigest()[:16]


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction. On SQLite, take the write lock before the first read: a deferred
    transaction that reads and then writes fails at once with "database is locked" when
    another writer committed in between, instead of waiting its turn."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("DELETE FROM rsu_rescore_jobs WHERE 1 = 0"))
        yield conn


@dataclass(frozen=True)
class PlannedBatch:
    """One batch's bounds in registration order (both ends included)."""

    batch_no: int
    first_household: str
    last_household: str
    first_created_at: datetime
    last_created_at: datetime

    @staticmethod
    def query() -> Select[tuple[int, str, str, datetime, datetime]]:
        """The batches' rows as :class:`PlannedBatch` takes them (``PlannedBatch(*row)``)."""
        return select(
            batches.c.batch_no,
            batches.c.first_household,
            batches.c.last_household,
            batches.c.first_created_at,
            batches.c.last_created_at,
        )

    def members(self) -> ColumnElement[bool]:
        """The condition on ``rsu_households`` that selects this batch's households."""
        c = households.c
        key = tuple_(c.created_at, c.household_id)

        def bound(created: datetime, household: str) -> Any:
            return tuple_(literal(created, c.created_at.type), literal(household, String()))

        return and_(
            # The first column alone as well: every planner then uses the index range.
            c.created_at.between(self.first_created_at, self.last_created_at),
            key >= bound(self.first_created_at, self.first_household),
            key <= bound(self.last_created_at, self.last_household),
        )


def plan(engine: Engine, models: ModelSet, version: str, batch_size: int) -> tuple[str, bool]:
    """The unfinished job for these model files (and True), or a new one planned now."""
    prefix = job_prefix(models)
    with writing(engine) as conn:
        open_jobs = conn.execute(
            select(jobs.c.job_id, jobs.c.model).where(jobs.c.finished_at_ns.is_(None))
        ).all()
        for job_id, _model in open_jobs:
            if job_id.startswith(prefix):
                return str(job_id), True
        if open_jobs:
            raise RescoreError(
                f"an unfinished rescoring with model {open_jobs[0].model} exists; "
                "run it to completion first"
            )
        job_id = f"{prefix}-{secrets.token_hex(8)}"
        rows: list[dict[str, Any]] = []
        first: tuple[datetime, str] | None = None
        last: tuple[datetime, str] | None = None
        size = total = 0

        def close_batch(first: tuple[datetime, str], last: tuple[datetime, str]) -> None:
            rows.append(
                {
                    "job_id": job_id,
                    "batch_no": len(rows),
                    "first_household": first[1],
                    "last_household": last[1],
                    "first_created_at": first[0],
                    "last_created_at": last[0],
                    "size": size,
                    "status": "pending",
                }
            )

        result = conn.execute(
            select(households.c.created_at, households.c.household_id)
            .order_by(households.c.created_at, households.c.household_id)
            .execution_options(yield_per=10_000)
        )
        for created_at, household_id in result:
            key = (created_at, household_id)
            if first is None:
                first = key
            last = key
            size += 1
            total += 1
            if size == batch_size:
                close_batch(first, last)
                first, size = None, 0
        if first is not None and last is not None:
            close_batch(first, last)
        conn.execute(
            insert(jobs),
            {
                "job_id": job_id,
                "model": version,
                "batch_size": batch_size,
                "total": total,
                "started_at_ns": time.time_ns(),
                "finished_at_ns": None,
            },
        )
        for start in range(0, len(rows), 5000):
            conn.execute(insert(batches), rows[start : start + 5000])
    return job_id, False
