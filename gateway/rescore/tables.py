"""The national rescoring's tables in the main store: one row a job, one a batch.

A job is tied to the exact model files (its id starts with a digest of them); a batch is a
range of households in registration order (``created_at``, then household id), with its
status: pending -> claimed (separate databases: set before any side effect) -> done
(committed with the households' model versions).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, String, Table

__all__ = ["batches", "jobs", "metadata"]

metadata = MetaData()
_TS = DateTime(timezone=True)
jobs = Table(
    "rsu_rescore_jobs", metadata,
    Column("job_id", String(40), primary_key=True),
    Column("model", String(64), nullable=False),
    Column("batch_size", Integer, nullable=False),
    Column("total", BigInteger, nullable=False),
    Column("started_at_ns", BigInteger, nullable=False),
    Column("finished_at_ns", BigInteger),
)  # fmt: skip
batches = Table(
    "rsu_rescore_batches", metadata,
    Column("job_id", String(40), primary_key=True),
    Column("batch_no", Integer, primary_key=True),
    Column("first_household", String(32), nullable=False),
    Column("last_household", String(32), nullable=False),
    Column("first_created_at", _TS, nullable=False),
    Column("last_created_at", _TS, nullable=False),
    Column("size", Integer, nullable=False),
    Column("status", String(8), nullable=False),
    Column("claimed_at_ns", BigInteger),
    Column("done_at_ns", BigInteger),
)  # fmt: skip
