"""The agency query's path against two baselines on the same server, SQLite and PostgreSQL
in one run: the synchronous bare route (a constant body: the framework's cost) and the floor
route (bench/gateway_app.py: only the mandatory work, in one thread-pool hop), and beside the
query its alternative design (the same enforcement in an asynchronous route with a dedicated
audit-writer thread: three hand-offs instead of one). Each round starts each configuration in
turn (SQLite one worker, PostgreSQL one worker, PostgreSQL two workers) and measures its
targets alternated; each figure is the median of the rounds.

Per database, one worker: closed-loop throughput, p50/p99 at concurrency 4, and the server's
CPU per request (user + system of its processes) of each target; the
query under an open-loop load (constant arrivals, latency from each request's scheduled
start) at half the query's closed-loop maximum; and on PostgreSQL the query's throughput with
two workers against one at the same concurrency. Goals (issue 22): query CPU per request <=
1.1x the floor's, throughput >= 0.3x the bare route's, p99 <= 20 ms closed-loop c=4 and
open-loop at half the maximum, two workers >= 1.6x one on PostgreSQL.

    .venv/bin/python bench/gateway.py [--seconds 3] [--rounds 3] [--database-url URL]

PostgreSQL is SIJILL_TEST_DATABASE_URL unless --database-url names one; SQLite only without
either. Prints one JSON object, with the load average beside the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import fresh_schema  # noqa: E402 - after the path is set


def demo_deployment(prefix: str, database_url: str | None) -> tuple[int, dict[str, str], Any]:
    """A demo data directory initialised for a benchmark: (a free port, the environment a
    gateway on it runs with, the demo's credentials)."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"sijill-{prefix}-"))
    port = free_port()
    env = {
        **os.environ,
        "SIJILL_DATA_DIR": str(data_dir),
        "SIJILL_PORT": str(port),
        "SIJILL_AGENCY_RATE_PER_S": "1000000",
        "SIJILL_AGENCY_BURST": "1000000",
        "SIJILL_LOG_LEVEL": "WARNING",
    }
    if database_url:
        env["SIJILL_DATABASE_URL"] = database_url
    sijill = [sys.executable, "-c", "from gateway.cli import main; main()"]
    subprocess.run(
        [*sijill, "demo", "--no-serve"], env=env, check=True, cwd=ROOT, capture_output=True
    )
    creds = json.loads((data_dir / "demo" / "credentials.json").read_text())
    return port, env, creds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not come up")


def agency_token(issuer: str, agency: dict[str, Any]) -> str:
    import httpx
    import jwt
    from jwt import PyJWK

    key = PyJWK.from_dict(agency["private_jwk"])
    now = int(time.time())
    assertion = jwt.encode(
        {
            "iss": agency["client_id"],
            "sub": agency["client_id"],
            "aud": f"{issuer}/oauth/token",
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "exp": now + 60,
        },
        key.key,
        algorithm="ES256",
        headers={"kid": agency["private_jwk"]["kid"]},
    )
    response = httpx.post(
        f"{issuer}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion": assertion,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        },
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


# -- the load generator (runs in its own process) ---------------------------------------------


async def _load(
    url: str, body: dict[str, Any], token: str, concurrency: int, seconds: float
) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30, headers=headers) as client:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                response = await client.post(url, json=body)
                latencies.append(time.perf_counter() - t0)
                if response.status_code != 200:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2)

    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
    }


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = %s
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = %s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%%d,"errors":%%d,"duration_us":%%d,"p50_us":%%d,"p99_us":%%d}\\n',
    summary.requests, e.status + e.connect + e.read + e.write + e.timeout,
    summary.duration, latency:percentile(50), latency:percentile(99)))
end
"""


def agency_pseudonym(issuer: str, token: str, cnie: str, purpose: str) -> str:
    """The agency's pseudonym for the citizen holding ``cnie``, by the lookup route."""
    import httpx

    found = httpx.post(
        f"{issuer}/v1/agency/lookup",
        headers={"Authorization": f"Bearer {token}"},
        json={"cnie": cnie, "purpose": purpose},
    )
    found.raise_for_status()
    return str(found.json()["pseudonym"])


def run_wrk(
    url: str, body: dict[str, Any], token: str, concurrency: int, seconds: float
) -> dict[str, Any]:
    """wrk (C, one thread) as the second process: it costs the server far less CPU than a
    Python client would on this 2-core machine."""
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(WRK_SCRIPT % (json.dumps(json.dumps(body)), json.dumps(f"Bearer {token}")))
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{max(1, int(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    script.unlink()
    figures = json.loads(out.strip().splitlines()[-1])
    return {
        "requests": figures["requests"],
        "errors": figures["errors"],
        "rps": round(figures["requests"] / (figures["duration_us"] / 1e6), 1),
        "p50_ms": round(figures["p50_us"] / 1000, 2),
        "p99_ms": round(figures["p99_us"] / 1000, 2),
        "generator": "wrk",
    }


def run_load(
    url: str, body: dict[str, Any], token: str, concurrency: int, seconds: float
) -> dict[str, Any]:
    """Run the load generator as a second process and return its figures: wrk where the
    machine has it, else a Python (httpx, asyncio) generator."""
    if shutil.which("wrk"):
        return run_wrk(url, body, token, concurrency, seconds)
    spec = json.dumps(
        {"url": url, "body": body, "token": token, "concurrency": concurrency, "seconds": seconds}
    )
    out = subprocess.run(
        [sys.executable, __file__, "--load", spec], capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout))


async def _open_load(
    url: str, body: dict[str, Any], token: str, rate: float, seconds: float
) -> dict[str, Any]:
    """Constant arrivals at ``rate`` a second for ``seconds``: each request starts at its
    scheduled instant whether or not the earlier ones have answered, and its latency counts
    from that instant (a server that falls behind is charged for the wait)."""
    import httpx

    count = max(1, int(rate * seconds))
    latencies: list[float] = []
    errors = 0
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    async with httpx.AsyncClient(limits=limits, timeout=30, headers=headers) as client:

        async def one(at: float) -> None:
            nonlocal errors
            try:
                response = await client.post(url, json=body)
                if response.status_code != 200:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append(time.perf_counter() - at)

        started = time.perf_counter()
        tasks = []
        for i in range(count):
            at = started + i / rate
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(at)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2)

    return {
        "rate": round(rate, 1),
        "requests": len(latencies),
        "errors": errors,
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
    }


def run_open_load(
    url: str, body: dict[str, Any], token: str, rate: float, seconds: float
) -> dict[str, Any]:
    """The open-loop generator as a second process; its figures."""
    spec = json.dumps({"url": url, "body": body, "token": token, "rate": rate, "seconds": seconds})
    out = subprocess.run(
        [sys.executable, __file__, "--open-load", spec], capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout))


# -- the benchmark ----------------------------------------------------------------------------

PURPOSE = "amo_tadamon_enrolment"
FIELDS = ["given_name_lat", "birth_date", "phone"]
# (database, workers) started in turn each round.
CONFIGS = (("sqlite", 1), ("postgresql", 1), ("postgresql", 2))


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system) of the server process and its worker processes so far."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def start_server(port: int, env: dict[str, str], workers: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "bench.gateway_app:factory", "--factory"),
            *("--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
            *("--no-access-log", "--log-level", "warning"),
        ],
        env=env,
        cwd=ROOT,
    )


def measure(
    deployment: tuple[int, dict[str, str], Any], workers: int, args: argparse.Namespace
) -> dict[str, Any]:
    """One configuration's figures: each target closed-loop (with the server's CPU per
    request), then, with one worker, the query open-loop at half its closed-loop rate."""

    port, env, creds = deployment
    issuer = creds["issuer"]
    agency = next(a for a in creds["agencies"] if a["client_id"] == "cnss")
    cnie = next(c["cnie"] for c in creds["citizens"] if c.get("cnie"))
    server = start_server(port, env, workers)
    try:
        wait_ready(issuer)
        token = agency_token(issuer, agency)
        pseudonym = agency_pseudonym(issuer, token, cnie, PURPOSE)
        body = {"fields": FIELDS, "purpose": PURPOSE}
        targets = {
            "bare": f"{issuer}/bench/bare",
            "floor": f"{issuer}/bench/floor/query/{pseudonym}",
            "query": f"{issuer}/v1/agency/persons/{pseudonym}/query",
            "writer": f"{issuer}/bench/writer/query/{pseudonym}",
        }
        if workers > 1:
            targets = {"query": targets["query"]}
        concurrency = args.concurrency if workers == 1 else args.workers_concurrency
        row: dict[str, Any] = {}
        for name, url in targets.items():
            if args.warmup > 0:
                run_load(url, body, token, concurrency, args.warmup)
            cpu = server_cpu(server.pid)
            figures = run_load(url, body, token, concurrency, args.seconds)
            used = server_cpu(server.pid) - cpu
            figures["cpu_ms_per_request"] = round(used * 1000 / max(1, figures["requests"]), 3)
            row[name] = figures
        if workers == 1:
            row["query_workers_concurrency"] = run_load(
                targets["query"], body, token, args.workers_concurrency, args.seconds
            )
            rate = row["query"]["rps"] / 2
            row["query_open_loop"] = run_open_load(
                targets["query"], body, token, rate, args.seconds
            )
        return row
    finally:
        server.terminate()
        server.wait(timeout=30)


def median_of(rounds: list[dict[str, Any]], target: str, key: str) -> float:
    return float(statistics.median(r[target][key] for r in rounds))


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the rounds, the ratios and the goals of one database's one-worker runs."""
    medians = {
        target: {
            key: median_of(rounds, target, key)
            for key in ("rps", "p50_ms", "p99_ms", "cpu_ms_per_request")
            if key in rounds[0][target]
        }
        for target in ("bare", "floor", "query", "writer", "query_open_loop")
    }
    medians["query_open_loop"]["rate"] = median_of(rounds, "query_open_loop", "rate")
    query, floor, bare = medians["query"], medians["floor"], medians["bare"]
    ratios = {
        "query_cpu_over_floor_ratio": round(
            query["cpu_ms_per_request"] / floor["cpu_ms_per_request"], 3
        ),
        "query_rps_over_bare_ratio": round(query["rps"] / bare["rps"], 3),
        "floor_rps_over_bare_ratio": round(floor["rps"] / bare["rps"], 3),
        "query_rps_over_floor_ratio": round(query["rps"] / floor["rps"], 3),
        # The alternative design (async route, dedicated audit-writer thread) against one hop.
        "writer_cpu_over_query_ratio": round(
            medians["writer"]["cpu_ms_per_request"] / query["cpu_ms_per_request"], 3
        ),
        "writer_rps_over_query_ratio": round(medians["writer"]["rps"] / query["rps"], 3),
    }
    goals = {
        "query_cpu_le_1_1x_floor": ratios["query_cpu_over_floor_ratio"] <= 1.1,
        "query_rps_ge_0_3x_bare": ratios["query_rps_over_bare_ratio"] >= 0.3,
        "query_p99_le_20ms_closed_c4": query["p99_ms"] <= 20,
        "query_p99_le_20ms_open_half_max": medians["query_open_loop"]["p99_ms"] <= 20,
    }
    return {"medians": medians, **ratios, "goals": goals}


def run_rounds(
    deployments: dict[str, tuple[int, dict[str, str], Any]], args: argparse.Namespace
) -> dict[str, Any]:
    """Every round of every configuration the deployments allow, and their summary."""
    configs = [(db, w) for db, w in CONFIGS if db in deployments]
    load_before = [round(x, 2) for x in os.getloadavg()]
    rounds: dict[tuple[str, int], list[dict[str, Any]]] = {c: [] for c in configs}
    for _ in range(args.rounds):
        for database, workers in configs:
            row = measure(deployments[database], workers, args)
            rounds[(database, workers)].append(row)
            print(json.dumps({"database": database, "workers": workers, **row}), file=sys.stderr)
    results: dict[str, Any] = {
        "benchmark": "gateway",
        "seconds_per_run": args.seconds,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "workers_concurrency": args.workers_concurrency,
        "load_average": {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]},
        "cpus": os.cpu_count(),
    }
    for database in deployments:
        one = rounds[(database, 1)]
        results[database] = summary(one)
        results[database]["runs"] = one
    if (two := rounds.get(("postgresql", 2))) is not None:
        one_rps = median_of(rounds[("postgresql", 1)], "query_workers_concurrency", "rps")
        two_rps = median_of(two, "query", "rps")
        pg = results["postgresql"]
        pg["two_workers"] = {"one_worker_rps": one_rps, "two_workers_rps": two_rps, "runs": two}
        pg["two_workers_over_one_ratio"] = round(two_rps / one_rps, 3)
        pg["goals"]["two_workers_ge_1_6x_one"] = pg["two_workers_over_one_ratio"] >= 1.6
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers-concurrency", type=int, default=8)
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds of load unmeasured")
    parser.add_argument(
        "--database-url", default=os.environ.get("SIJILL_TEST_DATABASE_URL") or None
    )
    parser.add_argument("--load", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--open-load", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        print(json.dumps(asyncio.run(_load(**json.loads(args.load)))))
        return
    if args.open_load:
        print(json.dumps(asyncio.run(_open_load(**json.loads(args.open_load)))))
        return

    with ExitStack() as stack:
        deployments = {"sqlite": demo_deployment("bench-sqlite", None)}
        if args.database_url:
            url = stack.enter_context(fresh_schema(args.database_url))
            deployments["postgresql"] = demo_deployment("bench-pg", url)
        results = run_rounds(deployments, args)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
