"""Hot-path reads: one indexed SELECT through a SQLAlchemy ``Connection`` (checkout, BEGIN,
execute, ROLLBACK) against the same statement through ``storekit.HotSQL`` (compiled once, a
kept autocommit DBAPI connection), with the bare driver call as the baseline, in one run, on
SQLite and PostgreSQL.

    .venv/bin/python bench/storekit.py [--reads 20000] [--backends sqlite,postgresql]

PostgreSQL comes from SIJILL_BENCH_DATABASE_URL or SIJILL_TEST_DATABASE_URL (a fresh schema,
dropped afterwards). Prints one JSON object: microseconds per read and each path's ratio to
the bare driver call.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, select

from bench.audit import database
from gateway.db import make_engine
from storekit import HotSQL

metadata = MetaData()
people = Table(
    "bench_people",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tag", String(32), nullable=False, unique=True),
    Column("subject", String(64), nullable=False),
)
BY_TAG = select(people.c.id, people.c.subject).where(people.c.tag == bindparam("tag"))
ROWS = 10_000


def per_read_us(reads: int, fn: Callable[[int], object]) -> float:
    for i in range(200):
        fn(i)
    started = time.perf_counter()
    for i in range(reads):
        fn(i)
    return round((time.perf_counter() - started) / reads * 1e6, 2)


def run(url: str, reads: int) -> dict[str, object]:
    engine = make_engine(url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            people.insert(),
            [{"id": i, "tag": f"t{i:08d}", "subject": f"s{i:016x}"} for i in range(ROWS)],
        )
    hot = HotSQL(engine)
    prepared = hot.prepare(BY_TAG)
    raw = hot._open()  # the driver connection itself, for the baseline

    def tag(i: int) -> str:
        return f"t{(i * 7919) % ROWS:08d}"

    def sqlalchemy_read(i: int) -> object:
        with engine.connect() as conn:
            return conn.execute(BY_TAG, {"tag": tag(i)}).first()

    def hot_read(i: int) -> object:
        return hot.one(BY_TAG, tag=tag(i))

    def driver_read(i: int) -> object:
        return raw.execute(prepared.sql, prepared.params({"tag": tag(i)})).fetchone()

    assert sqlalchemy_read(1) is not None and hot_read(1) == tuple(driver_read(1))
    figures = {
        "driver_us": per_read_us(reads, driver_read),
        "hot_sql_us": per_read_us(reads, hot_read),
        "sqlalchemy_connection_us": per_read_us(reads, sqlalchemy_read),
    }
    raw.close()
    hot.close()
    engine.dispose()
    base = figures["driver_us"]
    return {
        **figures,
        "hot_sql_ratio_to_driver": round(figures["hot_sql_us"] / base, 2),
        "sqlalchemy_ratio_to_driver": round(figures["sqlalchemy_connection_us"] / base, 2),
        "sqlalchemy_over_hot_sql": round(
            figures["sqlalchemy_connection_us"] / figures["hot_sql_us"], 2
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    results: dict[str, object] = {"benchmark": "storekit", "reads": args.reads}
    for backend in args.backends.split(","):
        with database(backend) as url:  # a temporary SQLite file or a scratch PG schema
            results[backend] = run(url, args.reads)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
