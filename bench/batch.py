"""Person-decisions per second of the agency batch routes (a 1,000-item batch of queries and
of eligibility questions, one worker) against two floors measured in the same run, on the same
server: the single routes' items per second (closed loop, concurrency 4), and the batch floor
(bench/batch_app.py: per item only the pseudonym read, the evaluation, the entry in one durable
append, the sealed decision and the vault read). Targets are run in alternation, rounds times,
and each figure is the median of its rounds. The decision cache (policies/cache.py) serves all
three alike; ``--policy-cache-entries 0`` measures them with an evaluation per item. Goal
(issue 22): a batch reaches at least 15× the single route per person.

    .venv/bin/python bench/batch.py [--seconds 3] [--rounds 3] [--items 1000] [--database-url URL]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import fresh_schema  # noqa: E402 - after the path is set
from bench.gateway import (  # noqa: E402 - after the path is set
    agency_pseudonym,
    agency_token,
    demo_deployment,
    run_load,
    wait_ready,
)

PURPOSE = "asd_payment"
FIELDS = ["family_name_lat", "birth_date", "phone"]


def run_batches(url: str, body: dict[str, Any], token: str, seconds: float) -> dict[str, Any]:
    """One batch after another for ``seconds`` (at least one), each answer read to its last
    line; an item whose line is not a 200, or a missing line, counts as an error."""
    import httpx

    items = len(body["items"])
    latencies: list[float] = []
    errors = 0
    with httpx.Client(timeout=120, headers={"Authorization": f"Bearer {token}"}) as client:
        started = time.perf_counter()
        while not latencies or time.perf_counter() - started < seconds:
            t0 = time.perf_counter()
            answer = client.post(url, json=body)
            latencies.append(time.perf_counter() - t0)
            lines = answer.text.splitlines() if answer.status_code == 200 else []
            errors += items - sum(1 for line in lines if json.loads(line).get("status", 200) == 200)
        elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": round(len(latencies) / elapsed, 2),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--single-concurrency", type=int, default=4)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--policy-cache-entries",
        default=None,
        help="the server's decision cache bound (0: every item evaluated); default its own",
    )
    args = parser.parse_args()
    with ExitStack() as stack:
        # A schema of the run's own: the demo deployment starts empty whatever the database held.
        url = stack.enter_context(fresh_schema(args.database_url)) if args.database_url else None
        rounds = measure(args, url)
    report(args, rounds)


def measure(args: argparse.Namespace, database_url: str | None) -> dict[str, Any]:
    """Each target's figures, round by round, against a server on ``database_url``."""
    port, env, creds = demo_deployment("batch", database_url)
    # The floor route is the bench app's, not one of the gateway's bulk routes: same body limit.
    env["SIJILL_MAX_BODY_BYTES"] = env.get("SIJILL_MAX_BULK_BODY_BYTES", str(256 * 1024))
    if args.policy_cache_entries is not None:
        env["SIJILL_POLICY_CACHE_ENTRIES"] = args.policy_cache_entries
    issuer = creds["issuer"]
    agency = next(a for a in creds["agencies"] if a["client_id"] == "cnss")
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "bench.batch_app:factory", "--factory"),
            *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
            *("--no-access-log", "--log-level", "warning"),
        ],
        env=env,
        cwd=ROOT,
    )
    try:
        wait_ready(issuer)
        token = agency_token(issuer, agency)
        pseudonyms = [
            agency_pseudonym(issuer, token, citizen["cnie"], PURPOSE)
            for citizen in creds["citizens"]
        ]
        # The demo's few citizens, over and over: each item is still decided, recorded and
        # read on its own, as each single request is.
        cycle = [pseudonyms[i % len(pseudonyms)] for i in range(args.items)]
        query_items = [{"pseudonym": p, "fields": FIELDS} for p in cycle]
        targets: dict[str, tuple[str, dict[str, Any], int, int]] = {
            "single_query": (
                f"{issuer}/v1/agency/persons/{pseudonyms[0]}/query",
                {"fields": FIELDS, "purpose": PURPOSE},
                args.single_concurrency,
                1,
            ),
            "single_eligibility": (
                f"{issuer}/v1/agency/persons/{pseudonyms[0]}/eligibility",
                {"program": "asd", "purpose": PURPOSE},
                args.single_concurrency,
                1,
            ),
            "batch_query": (
                f"{issuer}/v1/agency/batch/query",
                {"purpose": PURPOSE, "items": query_items},
                1,
                args.items,
            ),
            "batch_eligibility": (
                f"{issuer}/v1/agency/batch/eligibility",
                {"program": "asd", "purpose": PURPOSE, "items": [{"pseudonym": p} for p in cycle]},
                1,
                args.items,
            ),
            "floor_batch": (
                f"{issuer}/bench/floor/batch",
                {"purpose": PURPOSE, "items": query_items},
                1,
                args.items,
            ),
        }
        rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
        for _ in range(args.rounds):
            for name, (url, body, concurrency, items) in targets.items():
                if items == 1:
                    figures = run_load(url, body, token, concurrency, args.seconds)
                else:  # a payment run sends one batch after another
                    figures = run_batches(url, body, token, args.seconds)
                figures["items_per_s"] = round(figures["rps"] * items, 1)
                rounds[name].append(figures)
                print(name, json.dumps(figures), file=sys.stderr)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return rounds


def report(args: argparse.Namespace, rounds: dict[str, Any]) -> None:
    def median(name: str) -> float:
        return float(statistics.median(r["items_per_s"] for r in rounds[name]))

    items_per_s = {name: median(name) for name in rounds}

    def ratio(a: str, b: str) -> float | None:
        return round(items_per_s[a] / items_per_s[b], 2) if items_per_s[b] else None

    result = {
        "benchmark": "batch",
        "database": "postgresql" if args.database_url else "sqlite",
        "policy_cache_entries": args.policy_cache_entries or "default",
        "items": args.items,
        "seconds_per_run": args.seconds,
        "rounds": args.rounds,
        "items_per_s": items_per_s,
        "errors": {name: sum(r["errors"] for r in rs) for name, rs in rounds.items()},
        "batch_query_over_single_ratio": ratio("batch_query", "single_query"),
        "batch_eligibility_over_single_ratio": ratio("batch_eligibility", "single_eligibility"),
        "batch_query_over_floor_ratio": ratio("batch_query", "floor_batch"),
        "runs": rounds,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
