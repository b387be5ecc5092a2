"""Two processes spending from one agency's bucket together allow no more than the configured
rate: ``burst + rate × window``, within a tolerance of a tenth of a second's worth of tokens
(the processes' loops and the bucket's clock are not the same clock). On SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

RATE = 20.0
BURST = 10
WINDOW_S = 2.0
TOLERANCE = RATE * 0.1

# One process: say it is ready, read the common start time, then spend from "cnss" as fast as
# it can until the window ends; print how many it was allowed and refused.
WORKER = """
import json, sys, time
from gateway.db import make_engine
from gateway.ratelimit import SharedRateLimiter
url, window, rate, burst = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
limiter = SharedRateLimiter(make_engine(url, pool_size=1), rate, burst)
limiter.take("warm-up")
print("ready", flush=True)
start = float(sys.stdin.readline())
time.sleep(max(0.0, start - time.time()))
allowed = refused = 0
while time.time() < start + window:
    if limiter.take("cnss") == 0:
        allowed += 1
    else:
        refused += 1
print(json.dumps({"allowed": allowed, "refused": refused}))
"""


def test_two_processes_together_allow_no_more_than_the_configured_rate(
    migrated_urls: dict[str, str],
) -> None:
    url = migrated_urls["main"]
    args = [url, str(WINDOW_S), str(RATE), str(BURST)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for worker in workers:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "ready"
    start = time.time() + 0.2
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write(f"{start}\n")
        worker.stdin.flush()
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err[-800:]
        results.append(json.loads(out))
    allowed = sum(r["allowed"] for r in results)
    bound = BURST + RATE * WINDOW_S
    assert all(r["allowed"] >= 1 and r["refused"] >= 1 for r in results), results  # both hit it
    assert allowed <= bound + TOLERANCE, results
    # Per-process buckets would have let about twice the bound through; the shared one lets
    # the rate through, not much less.
    assert allowed >= 0.75 * bound, results
