"""Policy decisions per second and latency: embedded (regopy) against OPA-over-REST, one run.

Both engines answer the same seeded corpus of inputs (tests/policies/corpus.py: every subject
kind and action, allowed and denied). The REST side is ``sijill pdp serve`` in a subprocess,
reached through :class:`policies.OpaEngine` (opa-python-client over HTTP/1.1 keep-alive), i.e.
what a deployment with an OPA sidecar pays. Also reported: the regopy cost of the uncached
``Interpreter.query()`` path that the bundle replaces, and embedded throughput with two threads.
Goal (issue 6): embedded p99 <= 1 ms.

    .venv/bin/python bench/policy.py [--decisions 3000] [--rest-decisions 1000]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import regopy

from policies import POLICY_DIR, EmbeddedEngine, OpaEngine
from policies.engine import load_data, policy_files
from tests.policies.corpus import generate


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {
        "p50_ms": round(at(0.50), 4),
        "p90_ms": round(at(0.90), 4),
        "p99_ms": round(at(0.99), 4),
        "max_ms": round(ordered[-1] * 1000, 4),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 4),
    }


def run(decide, corpus: list[dict], count: int) -> dict[str, float]:
    for doc in corpus[:50]:  # warm up: per-thread interpreter, HTTP connection
        decide(doc)
    samples = []
    started = time.perf_counter()
    for i in range(count):
        doc = corpus[i % len(corpus)]
        t0 = time.perf_counter()
        decide(doc)
        samples.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    return {
        "decisions": count,
        "decisions_per_s": round(count / elapsed, 1),
        **percentiles(samples),
    }


def threaded(decide, corpus: list[dict], count: int, threads: int) -> float:
    per = count // threads

    def worker(offset: int) -> None:
        for i in range(per):
            decide(corpus[(i + offset) % len(corpus)])

    pool = [threading.Thread(target=worker, args=(k * 97,)) for k in range(threads)]
    started = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return round(per * threads / (time.perf_counter() - started), 1)


def locked_single_interpreter(corpus: list[dict], count: int, threads: int) -> float:
    """The alternative to per-thread interpreters: one interpreter behind a lock."""
    from policies.embedded import compile_bundle, evaluate_entrypoint
    from policies.engine import DECISION_PATH

    compiled = compile_bundle(POLICY_DIR, None, (DECISION_PATH,))
    interp = regopy.Interpreter()
    lock = threading.Lock()

    def decide(doc: dict) -> object:
        with lock:
            return evaluate_entrypoint(interp, compiled.bundle, DECISION_PATH, doc)

    return threaded(decide, corpus, count, threads)


def uncached_query(corpus: list[dict], count: int) -> dict[str, float]:
    """regopy's Interpreter.query(): recompiles the policy on every call (the slow path)."""
    files = policy_files(POLICY_DIR)
    interp = regopy.Interpreter()
    for path in files:
        if path.suffix == ".rego":
            interp.add_module(path.name, path.read_text())
    interp.add_data_json(json.dumps(load_data(p for p in files if p.suffix == ".json")))
    samples = []
    for i in range(count):
        interp.set_input(regopy.Input(corpus[i % len(corpus)]))
        t0 = time.perf_counter()
        interp.query("x = data.sijill.authz.decision")
        samples.append(time.perf_counter() - t0)
    return {"decisions": count, **percentiles(samples)}


def start_pdp() -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from gateway.cli import main; main()",
            "pdp",
            "serve",
            "--port",
            str(port),
            "--reload-every",
            "0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=0.5).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("pdp serve did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--decisions", type=int, default=3000)
    parser.add_argument("--rest-decisions", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7218)
    args = parser.parse_args()
    logging.getLogger("sijill.policy.decisions").setLevel(logging.WARNING)
    corpus = generate(args.seed, 500)

    embedded = EmbeddedEngine()
    results: dict[str, object] = {
        "corpus": len(corpus),
        "revision": embedded.revision[:12],
        # Latency tails on a shared 2-core machine follow its load; report it with the run.
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
    }
    results["embedded"] = run(embedded.decide, corpus, args.decisions)
    results["embedded_2_threads_decisions_per_s"] = threaded(
        embedded.decide, corpus, args.decisions, 2
    )
    results["locked_single_interpreter_2_threads_decisions_per_s"] = locked_single_interpreter(
        corpus, args.decisions, 2
    )
    results["regopy_uncached_query"] = uncached_query(corpus, min(300, args.decisions))

    proc, url = start_pdp()
    try:
        remote = OpaEngine(url, timeout=5)
        results["opa_rest_pdp_serve"] = run(remote.decide, corpus, args.rest_decisions)
        remote.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    emb, rest = results["embedded"], results["opa_rest_pdp_serve"]
    assert isinstance(emb, dict) and isinstance(rest, dict)
    results["ratio"] = {
        "throughput_embedded_over_rest": round(emb["decisions_per_s"] / rest["decisions_per_s"], 2),
        "p50_rest_over_embedded": round(rest["p50_ms"] / emb["p50_ms"], 2),
        "p99_rest_over_embedded": round(rest["p99_ms"] / emb["p99_ms"], 2),
    }
    results["goal_embedded_p99_le_1ms"] = emb["p99_ms"] <= 1.0
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
