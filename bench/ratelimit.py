"""The cost of a rate-limit check per agency request: the shared bucket in the main store
(``gateway.ratelimit.SharedRateLimiter``, one upsert) against the in-process bucket
(``ProcessRateLimiter``, the baseline), in one run, on SQLite and PostgreSQL: a request let
through, a request refused (two statements), and several threads spending from one client's
bucket at once (the row lock they share); with a bare ``SELECT 1`` round trip on the same kind
of kept connection as the floor a shared bucket cannot go under.

    .venv/bin/python bench/ratelimit.py [--checks 5000] [--threads 4] [--backends sqlite,postgresql]

PostgreSQL comes from SIJILL_BENCH_DATABASE_URL or SIJILL_TEST_DATABASE_URL (a fresh schema,
dropped afterwards). Prints one JSON object: microseconds per check, the shared bucket's ratio
to the in-process one and to the round trip.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.audit import database, run_threads
from gateway.db import make_engine, upgrade_store
from gateway.ratelimit import ProcessRateLimiter, RateLimiter, SharedRateLimiter
from storekit import hot_sql

OPEN = 1e9  # tokens a second: every check is let through
SHUT = 1e-9  # every check after the first is refused


def per_check_us(checks: int, fn: Callable[[int], object]) -> float:
    for i in range(min(200, checks)):
        fn(i)
    started = time.perf_counter()
    for i in range(checks):
        fn(i)
    return round((time.perf_counter() - started) / checks * 1e6, 2)


def threaded_us(limiter: RateLimiter, threads: int, checks: int) -> float:
    """Microseconds of wall time per check with ``threads`` threads on one client's bucket."""
    per = max(1, checks // threads)

    def work(_t: int) -> None:
        for _ in range(per):
            limiter.take("cnss")

    seconds = run_threads(threads, work)
    return round(seconds / (per * threads) * 1e6, 2)


def run(url: str, checks: int, threads: int) -> dict[str, object]:
    upgrade_store("main", url)
    engine = make_engine(url)
    try:
        local = ProcessRateLimiter(OPEN, 1000)
        shared = SharedRateLimiter(engine, OPEN, 1000)
        local_shut = ProcessRateLimiter(SHUT, 1)
        shared_shut = SharedRateLimiter(engine, SHUT, 1)
        assert shared.take("cnss") == 0.0 and shared_shut.take("dgi") == 0.0
        assert shared_shut.take("dgi") > 0
        hot, ping = hot_sql(engine), text("SELECT 1")
        figures = {
            "round_trip_us": per_check_us(checks, lambda i: hot.one(ping)),
            "process_allowed_us": per_check_us(checks, lambda i: local.take("cnss")),
            "shared_allowed_us": per_check_us(checks, lambda i: shared.take("cnss")),
            "process_refused_us": per_check_us(checks, lambda i: local_shut.take("dgi")),
            "shared_refused_us": per_check_us(checks, lambda i: shared_shut.take("dgi")),
            f"process_{threads}_threads_us": threaded_us(local, threads, checks),
            f"shared_{threads}_threads_us": threaded_us(shared, threads, checks),
        }
    finally:
        engine.dispose()

    def ratio(kind: str) -> float:
        return round(figures[f"shared_{kind}_us"] / max(figures[f"process_{kind}_us"], 0.01), 1)

    return {
        **figures,
        "shared_ratio_to_process_allowed": ratio("allowed"),
        "shared_ratio_to_process_refused": ratio("refused"),
        f"shared_ratio_to_process_{threads}_threads": ratio(f"{threads}_threads"),
        "shared_allowed_over_round_trip": round(
            figures["shared_allowed_us"] / figures["round_trip_us"], 2
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checks", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    results: dict[str, object] = {
        "benchmark": "ratelimit",
        "checks": args.checks,
        "threads": args.threads,
    }
    for backend in args.backends.split(","):
        with database(backend) as url:  # a temporary SQLite file or a scratch PG schema
            results[backend] = run(url, args.checks, args.threads)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
