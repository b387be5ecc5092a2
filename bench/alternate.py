"""One benchmark, two versions of the code, alternated in one run: the way to say whether a change
made anything slower on a shared, noisy machine.

Each version is checked out (``git worktree add --detach``) into a temporary directory and run
with this tree's interpreter and dependencies, its own code first on ``PYTHONPATH`` (so the
servers and commands a benchmark starts run that version too). Rounds alternate
before/after/after/before/… so drift in the machine's load falls on both. Every numeric leaf of
the benchmark's JSON output is reported as the median over rounds, with after ÷ before.

    .venv/bin/python bench/alternate.py --before REF [--after REF] [--rounds 3] \\
        -- enrol.py --persons 20000 --backends sqlite

``--after`` defaults to the working tree itself (uncommitted changes included).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def checkout(ref: str, into: Path) -> Path:
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(into), ref],
        check=True,
    )
    return into


def leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    """Numeric leaves of a JSON document, by path (lists by index, or by a row's name/label)."""
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield prefix, float(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            label = i
            if isinstance(item, dict):
                label = (
                    "/".join(
                        f"{k}={item[k]}"
                        for k in (
                            "backend",
                            "database",
                            "workers",
                            "concurrency",
                            "persons",
                            "name",
                        )
                        if k in item and not isinstance(item[k], dict | list)
                    )
                    or i
                )
            yield from leaves(item, f"{prefix}[{label}]")


def run_once(tree: Path, bench: list[str]) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, str(tree / "bench" / bench[0]), *bench[1:]],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(leaves(json.loads(out.stdout)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="git ref of the code before")
    parser.add_argument("--after", default=None, help="git ref (default: this working tree)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("bench", nargs=argparse.REMAINDER, help="-- BENCH.py [its arguments]")
    args = parser.parse_args()
    bench = [a for a in args.bench if a != "--"] if args.bench else []
    if not bench:
        parser.error("name the benchmark after --, e.g. -- enrol.py --persons 20000")
    with tempfile.TemporaryDirectory(prefix="sijill-alternate-") as scratch:
        trees = {"before": checkout(args.before, Path(scratch) / "before")}
        trees["after"] = checkout(args.after, Path(scratch) / "after") if args.after else ROOT
        try:
            samples: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
            order = ["before", "after"]
            for round_no in range(args.rounds):
                for side in order if round_no % 2 == 0 else order[::-1]:
                    samples[side].append(run_once(trees[side], bench))
                    print(f"round {round_no + 1} {side} done", file=sys.stderr)
            figures: dict[str, dict[str, float | None]] = {}
            for key in samples["before"][0]:
                before = [s[key] for s in samples["before"] if key in s]
                after = [s[key] for s in samples["after"] if key in s]
                if not before or not after:
                    continue
                b, a = statistics.median(before), statistics.median(after)
                figures[key] = {"before": b, "after": a, "after_over_before": a / b if b else None}
            print(
                json.dumps(
                    {
                        "benchmark": bench,
                        "before": args.before,
                        "after": args.after or "working tree",
                        "rounds": args.rounds,
                        "figures": figures,
                    },
                    indent=2,
                )
            )
        finally:
            for tree in trees.values():
                if tree != ROOT:
                    subprocess.run(
                        ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                        check=False,
                    )


if __name__ == "__main__":
    main()
