"""Hot-path reads: one indexed SELECT by four paths, in one run, on SQLite and PostgreSQL.

- ``driver``: the bare DBAPI call on a kept connection (the floor);
- ``hot_sql``: ``storekit.HotSQL`` (compiled once, kept autocommit driver connections);
- ``kept_connection``: a SQLAlchemy ``Connection`` kept open in AUTOCOMMIT (no checkout, no
  BEGIN/ROLLBACK; SQLAlchemy's statement cache, execution context and result object remain);
- ``pooled_connection``: a SQLAlchemy ``Connection`` checked out of the pool for each read
  (checkout, BEGIN, execute, ROLLBACK, checkin).

    .venv/bin/python bench/storekit.py [--reads 20000] [--rounds 5] [--backends sqlite,postgresql]

The paths alternate within each round (the order rotates round to round), so a machine busy with
other work slows them alike; each figure is the median of the rounds. PostgreSQL comes from
SIJILL_BENCH_DATABASE_URL or SIJILL_TEST_DATABASE_URL (a fresh schema, dropped afterwards).
Prints one JSON object: microseconds per read, each path's ratio to the driver call, and how
many times HotSQL's time the kept connection takes.
"""

from __future__ import annotations

import argparse
import json
import statistics
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
PATHS = ("driver", "hot_sql", "kept_connection", "pooled_connection")


def per_read_us(reads: int, fn: Callable[[int], object]) -> float:
    started = time.perf_counter()
    for i in range(reads):
        fn(i)
    return (time.perf_counter() - started) / reads * 1e6


def run(url: str, reads: int, rounds: int) -> dict[str, object]:
    engine = make_engine(url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            people.insert(),
            [{"id": i, "tag": f"t{i:08d}", "subject": f"s{i:016x}"} for i in range(ROWS)],
        )
    hot = HotSQL(engine)
    prepared = hot.prepare(BY_TAG)
    raw = hot._open().driver  # a driver connection of the same kind, for the floor
    kept = engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def tag(i: int) -> str:
        return f"t{(i * 7919) % ROWS:08d}"

    def driver(i: int) -> object:
        return raw.execute(prepared.sql, prepared.params({"tag": tag(i)})).fetchone()

    def hot_sql(i: int) -> object:
        return hot.one(BY_TAG, tag=tag(i))

    def kept_connection(i: int) -> object:
        return kept.execute(BY_TAG, {"tag": tag(i)}).first()

    def pooled_connection(i: int) -> object:
        with engine.connect() as conn:
            return conn.execute(BY_TAG, {"tag": tag(i)}).first()

    fns: dict[str, Callable[[int], object]] = {
        "driver": driver,
        "hot_sql": hot_sql,
        "kept_connection": kept_connection,
        "pooled_connection": pooled_connection,
    }
    expected = tuple(driver(1))
    for name, fn in fns.items():
        answer = fn(1)
        assert answer is not None and tuple(answer) == expected, name  # type: ignore[arg-type]
        for i in range(200):  # warm: statement caches, prepared statements, page cache
            fn(i)
    samples: dict[str, list[float]] = {name: [] for name in PATHS}
    per_round = max(1, reads // rounds)
    for r in range(rounds):
        order = PATHS[r % len(PATHS) :] + PATHS[: r % len(PATHS)]
        for name in order:
            samples[name].append(per_read_us(per_round, fns[name]))
    kept.close()
    raw.close()
    hot.close()
    engine.dispose()
    us = {name: round(statistics.median(samples[name]), 2) for name in PATHS}
    return {
        "us_per_read": us,
        "ratio_to_driver": {name: round(us[name] / us["driver"], 2) for name in PATHS},
        "kept_connection_over_hot_sql": round(us["kept_connection"] / us["hot_sql"], 2),
        "pooled_connection_over_hot_sql": round(us["pooled_connection"] / us["hot_sql"], 2),
        "rounds_us": {name: [round(x, 2) for x in samples[name]] for name in PATHS},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reads", type=int, default=20_000, help="reads a path, all rounds")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    results: dict[str, object] = {
        "benchmark": "storekit",
        "reads": args.reads,
        "rounds": args.rounds,
    }
    for backend in args.backends.split(","):
        with database(backend) as url:  # a temporary SQLite file or a scratch PG schema
            results[backend] = run(url, args.reads, args.rounds)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
