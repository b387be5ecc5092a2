"""Requests per second and p50/p99 latency of the full mediated path (agency query and
eligibility: token → principal → pseudonym → consents → policy → durable audit append →
vault reveal) against a bare FastAPI route returning the same JSON on the same server, at
concurrency 1, 32 and 128, with one and two worker processes. Load comes from a second
process on loopback. Goal (issue 10): ratio >= 0.5 and p99 < 20 ms at concurrency 32.

    .venv/bin/python bench/gateway.py [--seconds 5] [--database-url URL]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


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


# -- the benchmark ----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--concurrency", default="1,32,128")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--load", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        spec = json.loads(args.load)
        print(json.dumps(asyncio.run(_load(**spec))))
        return

    import httpx

    port, env, creds = demo_deployment("bench", args.database_url)
    issuer = creds["issuer"]
    agency = next(a for a in creds["agencies"] if a["client_id"] == "cnss")
    cnie = next(c["cnie"] for c in creds["citizens"] if c.get("cnie"))
    purpose = "amo_tadamon_enrolment"
    results: dict[str, Any] = {
        "benchmark": "gateway",
        "seconds_per_run": args.seconds,
        "database": "postgresql" if args.database_url else "sqlite",
        "runs": [],
    }
    for workers in [int(w) for w in args.workers.split(",")]:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.gateway_app:factory",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=ROOT,
        )
        try:
            wait_ready(issuer)
            token = agency_token(issuer, agency)
            headers = {"Authorization": f"Bearer {token}"}
            found = httpx.post(
                f"{issuer}/v1/agency/lookup",
                headers=headers,
                json={"cnie": cnie, "purpose": purpose},
            )
            found.raise_for_status()
            pseudonym = found.json()["pseudonym"]
            targets = {
                "bare": (
                    f"{issuer}/bench/bare",
                    {"fields": ["given_name_lat"], "purpose": purpose},
                ),
                "query": (
                    f"{issuer}/v1/agency/persons/{pseudonym}/query",
                    {"fields": ["given_name_lat", "birth_date", "phone"], "purpose": purpose},
                ),
                "eligibility": (
                    f"{issuer}/v1/agency/persons/{pseudonym}/eligibility",
                    {"program": "amo_tadamon", "purpose": purpose},
                ),
            }
            for concurrency in [int(c) for c in args.concurrency.split(",")]:
                row: dict[str, Any] = {"workers": workers, "concurrency": concurrency}
                for name, (url, body) in targets.items():
                    row[name] = run_load(url, body, token, concurrency, args.seconds)
                for name in ("query", "eligibility"):
                    row[f"{name}_ratio"] = round(row[name]["rps"] / row["bare"]["rps"], 3)
                results["runs"].append(row)
                print(json.dumps(row), file=sys.stderr)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
