"""Soak: the full mediated agency query at 70 % of the measured capacity for five minutes,
against a real gateway (uvicorn, one worker, the bench app of bench/gateway_app.py).

First the capacity: a closed loop of 32 concurrent clients for ``--capacity-seconds``. Then
an open loop paced at ``--load`` times that rate, from a second process, refreshing its
access token as a real agency would: ``--warmup-seconds`` of warm-up, then ``--seconds`` of
soak. Passes with zero errors throughout and resident memory growing by less than 10 % from
the end of the warm-up to the end of the soak.

    .venv/bin/python bench/soak.py [--seconds 300] [--load 0.7] [--database-url URL]

Prints one JSON object; exits 1 when the soak fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.gateway import (  # noqa: E402 - after the path is set
    agency_pseudonym,
    agency_token,
    demo_deployment,
    run_load,
    wait_ready,
)

TOKEN_REFRESH_S = 120  # well inside the access token's lifetime
MAX_IN_FLIGHT = 256
MAX_RSS_GROWTH = 0.10


async def _paced(spec: dict[str, Any]) -> dict[str, Any]:
    """Open loop: one request every 1/rate seconds, whatever the answers' latency."""
    import httpx

    rate, seconds, url, body = spec["rate"], spec["seconds"], spec["url"], spec["body"]
    token = agency_token(spec["issuer"], spec["agency"])
    token_at = time.monotonic()
    latencies: list[float] = []
    errors: dict[str, int] = {}
    in_flight: set[asyncio.Task[None]] = set()
    skipped = 0
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one(bearer: str) -> None:
            t0 = time.perf_counter()
            try:
                response = await client.post(
                    url, json=body, headers={"Authorization": f"Bearer {bearer}"}
                )
                status = str(response.status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            latencies.append(time.perf_counter() - t0)
            if status != "200":
                errors[status] = errors.get(status, 0) + 1

        started = time.perf_counter()
        sent = 0
        while (now := time.perf_counter()) < started + seconds:
            if time.monotonic() - token_at > TOKEN_REFRESH_S:
                token = await asyncio.to_thread(agency_token, spec["issuer"], spec["agency"])
                token_at = time.monotonic()
            # Always yield, even when behind: the requests already started must run.
            await asyncio.sleep(max(0.0, started + sent / rate - now))
            if len(in_flight) >= MAX_IN_FLIGHT:
                skipped += 1  # the gateway (or this client) is not keeping up: counted, not queued
                sent += 1
                continue
            task = asyncio.create_task(one(token))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            sent += 1
        await asyncio.gather(*in_flight)
        elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2)

    return {
        "requests": len(latencies),
        "errors": sum(errors.values()) + skipped,
        "errors_by_status": errors,
        "not_sent_over_max_in_flight": skipped,
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
    }


def _rss(pid: int) -> int:
    import psutil

    return int(psutil.Process(pid).memory_info().rss)


def _run_paced(spec: dict[str, Any]) -> dict[str, Any]:
    """The paced load from a second process, so the server's CPU and memory are its own."""
    out = subprocess.run(
        [sys.executable, __file__, "--paced", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(json.loads(out))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--capacity-seconds", type=float, default=15.0)
    parser.add_argument("--load", type=float, default=0.7)
    parser.add_argument("--warmup-seconds", type=float, default=30.0)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--paced", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.paced:
        print(json.dumps(asyncio.run(_paced(json.loads(args.paced)))))
        return

    port, env, creds = demo_deployment("soak", args.database_url)
    issuer = creds["issuer"]
    agency = next(a for a in creds["agencies"] if a["client_id"] == "cnss")
    cnie = next(c["cnie"] for c in creds["citizens"] if c.get("cnie"))
    purpose = "amo_tadamon_enrolment"
    server = subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "bench.gateway_app:factory", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
            "--log-level", "warning",
        ],
        env=env,
        cwd=ROOT,
    )  # fmt: skip
    try:
        wait_ready(issuer)
        token = agency_token(issuer, agency)
        pseudonym = agency_pseudonym(issuer, token, cnie, purpose)
        url = f"{issuer}/v1/agency/persons/{pseudonym}/query"
        body = {"fields": ["given_name_lat", "birth_date", "phone"], "purpose": purpose}
        capacity = run_load(url, body, token, 32, args.capacity_seconds)
        rate = round(capacity["rps"] * args.load, 1)
        spec = {
            "issuer": issuer, "agency": agency, "url": url, "body": body,
            "rate": rate, "seconds": args.seconds,
        }  # fmt: skip
        # Warm-up at the soak's own rate: pools, caches and the thread pool reach their working
        # size, so the growth measured from here on is what the load adds over time.
        warmup = _run_paced({**spec, "seconds": args.warmup_seconds})
        rss_start = _rss(server.pid)
        samples = [rss_start]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(5):
                samples.append(_rss(server.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        soak = _run_paced(spec)
        stop.set()
        sampler.join()
        rss_end = _rss(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    growth = (rss_end - rss_start) / rss_start
    result = {
        "benchmark": "soak",
        "database": "postgresql" if args.database_url else "sqlite",
        "route": "POST /v1/agency/persons/{pseudonym}/query",
        "capacity": capacity,
        "load": args.load,
        "target_rps": rate,
        "warmup": {"seconds": args.warmup_seconds, **warmup},
        "seconds": args.seconds,
        "soak": soak,
        "rss_start_mb": round(rss_start / 2**20, 1),
        "rss_end_mb": round(rss_end / 2**20, 1),
        "rss_max_mb": round(max([*samples, rss_end]) / 2**20, 1),
        "rss_growth": round(growth, 4),
        "rss_every_5s_mb": [round(r / 2**20) for r in samples],
        "passed": warmup["errors"] == 0 and soak["errors"] == 0 and growth < MAX_RSS_GROWTH,
    }
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
