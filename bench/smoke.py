"""Every benchmark once, at tiny sizes, so that none rots: each must run to the end and print one
JSON object that carries a ratio against its baseline. The figures mean nothing at these sizes;
`make bench` measures.

    .venv/bin/python bench/smoke.py [--only NAME,...]

Uses SIJILL_TEST_DATABASE_URL for the PostgreSQL runs when it is set, else SQLite only.
Prints one JSON object (each benchmark's seconds and whether it passed); exits 1 on a failure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def sizes(database_url: str | None) -> dict[str, list[str]]:
    backends = "sqlite,postgresql" if database_url else "sqlite"
    pg = ["--postgres", database_url] if database_url else []
    return {
        "vault": ["--persons", "200", *pg],
        "audit": [
            *("--threads", "4", "--per-thread", "10", "--proof-size", "1000"),
            *("--backends", backends),
            *("--worker-rounds", "1", "--worker-threads", "2", "--worker-seconds", "0.5"),
        ],
        "policy": ["--decisions", "100", "--rest-decisions", "50"],
        "oauth": ["--tokens", "20", "--requests", "40"],
        "storekit": ["--reads", "500", "--backends", backends],
        "enrol": ["--persons", "1000", "--batch", "500", "--backends", backends],
        "scoring": ["--households", "600", "--workers", "1", "--batch", "200", "--rounds", "1"],
        "gateway": ["--seconds", "0.5", "--rounds", "1", "--warmup", "0"],
        "batch": [
            *("--seconds", "0.5", "--rounds", "1", "--items", "100"),
            *(["--database-url", database_url] if database_url else []),
        ],
        "ratelimit": ["--checks", "200", "--threads", "2", "--backends", backends],
    }


def has_ratio(value: Any) -> bool:
    if isinstance(value, dict):
        return any(
            any(mark in key for mark in ("ratio", "_over_", "_vs_")) or has_ratio(item)
            for key, item in value.items()
        )
    if isinstance(value, list):
        return any(has_ratio(item) for item in value)
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=None, help="comma-separated benchmark names")
    args = parser.parse_args()
    plan = sizes(os.environ.get("SIJILL_TEST_DATABASE_URL"))
    if args.only:
        plan = {name: plan[name] for name in args.only.split(",")}
    report: dict[str, dict[str, Any]] = {}
    failed = False
    for name, argv in plan.items():
        started = time.perf_counter()
        run = subprocess.run(
            [sys.executable, str(ROOT / "bench" / f"{name}.py"), *argv],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        entry: dict[str, Any] = {"seconds": round(time.perf_counter() - started, 1)}
        try:
            output = json.loads(run.stdout)
            entry["ok"] = run.returncode == 0 and has_ratio(output)
            if not entry["ok"]:
                entry["error"] = "no ratio in the output" if run.returncode == 0 else "exit code"
        except json.JSONDecodeError:
            entry["ok"] = False
            entry["error"] = "output is not one JSON object"
        if not entry["ok"]:
            failed = True
            entry["stderr"] = run.stderr[-2000:]
        report[name] = entry
        print(
            f"{name}: {'ok' if entry['ok'] else 'FAILED'} in {entry['seconds']} s", file=sys.stderr
        )
    print(json.dumps(report, indent=2))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
