"""Audit log throughput and proof latency, on SQLite and PostgreSQL.

1. Appends per second through ``AuditLog.append`` from several threads (group commit: one
   durable transaction per batch, sequenced under the tree-head lock), against a baseline
   measured in the same run: plain single-row INSERT + COMMIT of the same rows (same columns,
   same durability settings, same threads) into an unsequenced table with no tree.
2. Inclusion-proof latency at 1,000,000 entries: the tree is bulk-loaded through the storage
   driver (100,000 leaves a transaction), then random proofs are served from the stored
   complete-subtree nodes: cold (no node cache, every proof reads the database) and warm
   (the log's node cache); each proof is checked against the root once.
   With --pymerkle, the same for pymerkle 7's in-memory and SQLite trees (for the note on why
   the tree code is our own).
3. The log as the gateway runs it (the signer's memory, a checkpoint every second taken to a
   witness in its own process) against the same with no witness, alternated in one run, and the
   unsigned tail's age sampled while the load runs.
4. A subject's newest 50 entries (a citizen's access log, first page) in that log, through the
   segment-keyed subject index, against the same page through a plain (subject, idx) index
   built on the same table in the same run.
5. On PostgreSQL (alone with --workers): appends/s of one worker process against two
   appending to the same log at once, alternated in one run (each process
   ``--worker-threads`` threads calling ``append``, group commit, for ``--worker-seconds``),
   with the batches' mean size, the load average beside each figure, and the round trips of a
   batch counted on the sequencer's connection in libpq's protocol trace (and how many of them
   the head's lock is held across).

    .venv/bin/python bench/audit.py [--threads 128] [--per-thread 80] [--proof-size 1000000]
        [--backends sqlite,postgresql] [--pymerkle [--pymerkle-size 100000]]
        [--witness-rounds 2]
    .venv/bin/python bench/audit.py --workers [--worker-rounds 3] [--worker-threads 32]
        [--worker-seconds 5]

PostgreSQL comes from SIJILL_BENCH_DATABASE_URL or SIJILL_TEST_DATABASE_URL (a fresh schema,
dropped afterwards). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alembic import command
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import (
    Column,
    Engine,
    MetaData,
    Table,
    bindparam,
    create_engine,
    insert,
    select,
    text,
)

from audit import AuditEntry, AuditLog, EntryFilter, NoteSigner, SqlStorage
from audit.merkle import CompactRange, leaf_hash, verify_inclusion
from audit.storage import StoredEntry
from audit.storage.sql import _row_entry
from audit.storage.tables import entries_table
from bench.common import fresh_schema
from gateway import db
from storekit import durable_writer

ORIGIN = "bench.sijill/audit"


def entry(n: int) -> AuditEntry:
    return AuditEntry(
        time_ns=1_795_946_400_000_000_000 + n,
        actor={"kind": "agency", "id": f"agency-{n % 12}", "sector": "health"},
        action="read_attributes",
        subject=f"st_{n % 100_003:08x}",
        fields=["household_size", "region"],
        purpose="amo_tadamon_enrolment",
        legal_basis={"type": "law", "ref": "72.18 art. 10"},
        decision_id=f"d-{n}",
        policy_revision="rev-1",
        outcome="allow",
    )


@contextmanager
def database(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/audit.db"
        return
    base = os.environ.get("SIJILL_BENCH_DATABASE_URL") or os.environ["SIJILL_TEST_DATABASE_URL"]
    with fresh_schema(base) as url:
        yield url


def run_threads(threads: int, work: Callable[[int], None]) -> float:
    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    start = time.perf_counter()
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    return time.perf_counter() - start


def group_commit_rate(engine: Engine, threads: int, per: int) -> dict[str, float]:
    # The log writes through one connection and reads through at most four, whatever the
    # number of appending threads.
    log = AuditLog.for_engine(engine, NoteSigner(ORIGIN, Ed25519PrivateKey.generate()), ORIGIN)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for n in range(per):
                log.append(entry(t * per + n))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    seconds = run_threads(threads, work)
    log.close()
    if errors:
        raise errors[0]
    assert log.size() == threads * per
    return {"appends_per_s": round(threads * per / seconds), "seconds": round(seconds, 2)}


class WitnessServer:
    """``sijill witness serve`` in its own process (a witness is another party's machine)."""

    def __init__(self, directory: Path, log_key: str) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        sijill = str(Path(sys.executable).with_name("sijill"))
        base = [sijill, "witness"]
        opts = ["--directory", str(directory), "--name", "bench.witness"]
        key = subprocess.run([*base, "key", *opts], capture_output=True, text=True, check=True)
        self.key = key.stdout.strip()
        self.proc = subprocess.Popen(
            [*base, "serve", *opts, "--log", log_key, "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import httpx

        for _ in range(300):
            try:
                httpx.get(f"{self.url}/latest", params={"origin": ORIGIN}, timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the witness did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def deployed_rate(
    engine: Engine,
    threads: int,
    per: int,
    signer: NoteSigner,
    state: Path,
    witness: WitnessServer | None,
    start_at: int,
) -> dict[str, object]:
    """Appends/s through the log as the gateway runs it: the signer's memory in a file (none if
    ``state`` is ``Path()``), the checkpointer signing every second (and taking each checkpoint
    to ``witness``); and the unsigned tail's age, sampled every 50 ms while the load runs."""
    from audit import CosignatureVerifier, FileMemory
    from gateway.witnesses import WitnessEndpoint
    from gateway.witnessing import Checkpointer, WitnessClient

    memory = FileMemory(state, ORIGIN) if state.name else None
    log = AuditLog.for_engine(engine, signer, ORIGIN, memory=memory)
    client = None
    if witness is not None:
        endpoint = WitnessEndpoint(witness.url, CosignatureVerifier.parse(witness.key))
        client = WitnessClient(log, [endpoint], lambda problem: print(problem, file=sys.stderr))
    checkpointer = Checkpointer(log, client, 1.0)
    checkpointer.start()
    appended: dict[int, float] = {}
    ages: list[float] = []
    running = threading.Event()
    running.set()

    def sample() -> None:
        while running.is_set():
            time.sleep(0.05)
            latest = log.storage.latest_checkpoint()
            covered = latest.tree_size if latest else 0
            first_unsigned = appended.get(covered)
            ages.append(time.monotonic() - first_unsigned if first_unsigned else 0.0)

    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for n in range(per):
                receipt = log.append(entry(start_at + t * per + n))
                appended[receipt.index] = time.monotonic()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    sampler = threading.Thread(target=sample)
    sampler.start()
    seconds = run_threads(threads, work)
    running.clear()
    sampler.join()
    checkpointer.stop()
    if client is not None:
        client.close()
    log.close()
    if errors:
        raise errors[0]
    ages.sort()
    return {
        "appends_per_s": round(threads * per / seconds),
        "seconds": round(seconds, 2),
        "tail_age_p50_s": round(statistics.median(ages), 3),
        "tail_age_p99_s": round(ages[int(len(ages) * 0.99) - 1], 3),
        "tail_age_max_s": round(ages[-1], 3),
    }


def witness_cost(url: str, threads: int, per: int, rounds: int) -> dict[str, object]:
    """The deployed log with one witness against the same with none, alternated, one store."""
    signer = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
    engine = db.make_engine(url)
    with tempfile.TemporaryDirectory() as tmp:
        witness = WitnessServer(Path(tmp) / "witness", str(signer.verifier))
        runs: dict[str, list[dict[str, object]]] = {
            "no_memory_no_witness": [],
            "no_witness": [],
            "one_witness": [],
        }
        state = Path(tmp) / "signer-state.json"
        configs = (
            ("no_memory_no_witness", Path(), None),
            ("no_witness", state, None),
            ("one_witness", state, witness),
        )
        start = 0
        try:
            for r in range(rounds):
                # Each round the other way round: the log grows from run to run, and a fixed
                # order would always give the last configuration the largest log.
                for label, memory, w in configs if r % 2 == 0 else configs[::-1]:
                    runs[label].append(
                        deployed_rate(engine, threads, per, signer, memory, w, start)
                    )
                    start += threads * per
        finally:
            witness.stop()
            engine.dispose()
    # Medians of the alternated rounds.
    best = {k: statistics.median(int(r["appends_per_s"]) for r in v) for k, v in runs.items()}  # type: ignore[call-overload]
    p99 = max(float(r["tail_age_p99_s"]) for r in runs["one_witness"])  # type: ignore[arg-type]
    return {
        "runs": runs,
        "ratio_one_witness_vs_none": round(best["one_witness"] / best["no_witness"], 3),
        "ratio_memory_vs_none": round(best["no_witness"] / best["no_memory_no_witness"], 3),
        "tail_age_p99_s_worst": p99,
    }


def plain_insert_rate(url: str, threads: int, per: int) -> dict[str, float]:
    """The baseline: each row its own INSERT and COMMIT, no sequencing, no tree. The threads
    share a pool of at most 16 connections, as a web app's request threads would (and the
    shared PostgreSQL server's connection limit demands)."""
    sqlite = url.startswith("sqlite")
    engine = db.make_engine(url) if sqlite else create_engine(url, pool_size=16, max_overflow=0)
    plain = Table(
        "bench_plain",
        MetaData(),
        *(Column(c.name, c.type, primary_key=c.primary_key) for c in entries_table.columns),
    )
    plain.create(engine)
    add = insert(plain)

    def work(t: int) -> None:
        for n in range(per):
            i = t * per + n
            e = entry(i)
            raw = e.canonical()
            # The same durability as the audit writer.
            with durable_writer(engine.connect()) as conn, conn.begin():
                conn.execute(
                    add,
                    {
                        "idx": i,
                        "leaf_hash": leaf_hash(raw),
                        "entry": raw.decode(),
                        "time_ns": e.time_ns,
                        "subject": e.subject,
                        "actor_kind": "agency",
                        "actor_id": e.actor["id"],
                        "action": e.action,
                        "purpose": e.purpose,
                        "outcome": e.outcome,
                    },
                )

    try:
        seconds = run_threads(threads, work)
    finally:
        engine.dispose()
    return {"inserts_per_s": round(threads * per / seconds), "seconds": round(seconds, 2)}


def bulk_load(engine: Engine, size: int, chunk: int = 100_000) -> tuple[float, bytes]:
    """A size-entry log through the driver, 100k leaves a transaction."""
    template = entry(0).canonical().decode().replace('"d-0"', '"d-{n}"')
    storage = SqlStorage(engine)
    frontier = CompactRange()
    start = time.perf_counter()
    for lo in range(0, size, chunk):
        rows, nodes = [], []
        for n in range(lo, min(size, lo + chunk)):
            raw = template.replace("{n}", str(n)).encode()
            leaf = leaf_hash(raw)
            nodes.extend(frontier.append(leaf))
            rows.append(
                StoredEntry(
                    n,
                    leaf,
                    raw,
                    n,
                    f"st_{n % 100_003:08x}",
                    "agency",
                    f"agency-{n % 12}",
                    "read_attributes",
                    "amo_tadamon_enrolment",
                    "allow",
                )
            )
        with storage.sequencer() as seq:
            assert seq.tree_size == lo
            seq.write(rows, nodes, frontier.size, frontier.root(), frontier.hashes(), None)
    storage.close()
    return time.perf_counter() - start, frontier.root()


def percentiles(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "p50_ms": round(statistics.median(samples) * 1000, 4),
        "p99_ms": round(samples[int(len(samples) * 0.99) - 1] * 1000, 4),
        "mean_ms": round(statistics.fmean(samples) * 1000, 4),
    }


def proof_latency(engine: Engine, size: int, root: bytes, count: int = 1000) -> dict[str, object]:
    signer = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
    rng = random.Random(7)
    indices = [rng.randrange(size) for _ in range(count)]
    results: dict[str, object] = {}
    for label, cache in (("cold", 0), ("warm", 1 << 16)):
        log = AuditLog.for_engine(engine, signer, ORIGIN, node_cache_size=cache)
        first = log.inclusion_proof(indices[0], size)
        assert verify_inclusion(first.leaf_hash, indices[0], size, first.audit_path, root)
        if label == "warm":
            for i in indices:  # fill the cache with the upper levels, as a running server has
                log.inclusion_proof(i, size)
        samples = []
        for i in indices:
            t = time.perf_counter()
            log.inclusion_proof(i, size)
            samples.append(time.perf_counter() - t)
        log.close()
        results[label] = percentiles(samples)
    return results


def subject_listing(engine: Engine, size: int, count: int = 1000) -> dict[str, object]:
    """A subject's newest 50 entries (the first page of a citizen's access log) as the storage
    driver reads them through the segment-keyed subject index, against the statement it issued
    before that index (one search of a plain (subject, idx) index, built on the same table in
    the same run), each on a connection of the pool and turned into the same stored rows."""
    storage = SqlStorage(engine)
    rng = random.Random(11)
    # Subjects of the loaded log (bulk_load gives entry n the subject n % 100,003).
    subjects = [f"st_{rng.randrange(min(size, 100_003)):08x}" for _ in range(count)]
    top = 1 << 62

    def timed(read: Callable[[str], int]) -> list[float]:
        samples = []
        for subject in subjects:
            t = time.perf_counter()
            assert read(subject) > 0
            samples.append(time.perf_counter() - t)
        return samples

    segmented = timed(lambda s: len(storage.find(EntryFilter(subject=s), before=top, limit=50)))
    storage.close()
    c = entries_table.c
    plain_page = (
        select(entries_table)
        .where(c.subject == bindparam("s"), c.idx < top)
        .order_by(c.idx.desc())
        .limit(50)
    )
    with engine.begin() as conn:
        conn.execute(text("CREATE INDEX ix_bench_plain_subject ON audit_entries (subject, idx)"))
        conn.execute(text("DROP INDEX ix_audit_entries_subject_segment"))

    def plain_read(subject: str) -> int:
        with engine.connect() as conn:
            return len([_row_entry(r) for r in conn.execute(plain_page, {"s": subject})])

    plain = timed(plain_read)
    return {
        "segment_index": percentiles(segmented),
        "plain_index_baseline": percentiles(plain),
        "ratio_p50_vs_plain": round(statistics.median(segmented) / statistics.median(plain), 2),
    }


def pymerkle_latency(size: int, count: int = 5) -> dict[str, object]:
    """pymerkle 7 at ``size`` leaves: its in-memory tree (whole tree in one process's memory)
    and its SQLite tree (leaves only; subtree roots recomputed from leaves, cache cleared)."""
    from pymerkle import InmemoryTree, SqliteTree

    template = entry(0).canonical().decode().replace('"d-0"', '"d-{n}"')
    data = [template.replace("{n}", str(n)).encode() for n in range(size)]
    rng = random.Random(7)
    out: dict[str, object] = {"size": size}
    memory = InmemoryTree(algorithm="sha256")
    start = time.perf_counter()
    for d in data:
        memory.append_entry(d)
    out["inmemory_build_s"] = round(time.perf_counter() - start, 1)
    samples = []
    for _ in range(count):
        t = time.perf_counter()
        memory.prove_inclusion(rng.randrange(size) + 1, size)
        samples.append(time.perf_counter() - t)
    out["inmemory_proof"] = percentiles(samples)
    with tempfile.TemporaryDirectory() as tmp:
        disk = SqliteTree(f"{tmp}/pymerkle.db", algorithm="sha256")
        start = time.perf_counter()
        disk.append_entries(data)
        out["sqlite_build_s"] = round(time.perf_counter() - start, 1)
        samples = []
        for _ in range(count):
            disk.cache_clear()
            t = time.perf_counter()
            disk.prove_inclusion(rng.randrange(size) + 1, size)
            samples.append(time.perf_counter() - t)
        out["sqlite_cold_proof"] = percentiles(samples)
        disk.con.close()
    return out


def append_worker(
    url: str, key_pem: bytes, name: str, threads: int, seconds: float, start: Any, out: Any
) -> None:
    """One worker process: ``threads`` threads appending through one log (group commit) from
    the moment every worker is ready until ``seconds`` later; puts its counts on ``out``."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(key_pem, None)
    assert isinstance(key, Ed25519PrivateKey)
    engine = db.make_engine(url)
    log = AuditLog.for_engine(engine, NoteSigner(ORIGIN, key), ORIGIN)
    log.bind()
    batches: list[int] = []
    write_batch = log._write_batch

    def counted(batch: Any, transaction: Any = None) -> Any:
        batches.append(len(batch))
        return write_batch(batch, transaction)

    log._write_batch = counted  # type: ignore[method-assign]
    log.append(entry(0))  # connections opened, statements compiled, before the clock starts
    batches.clear()
    counts = [0] * threads
    start.wait(timeout=120)
    deadline = time.perf_counter() + seconds

    def work(t: int) -> None:
        n = 0
        while time.perf_counter() < deadline:
            log.append(entry(t * 1_000_000 + n))
            n += 1
        counts[t] = n

    elapsed = run_threads(threads, work)
    log.close()
    engine.dispose()
    out.put((name, sum(counts), elapsed, batches))


def workers_round(
    url: str, key_pem: bytes, processes: int, threads: int, seconds: float
) -> dict[str, object]:
    spawn = multiprocessing.get_context("spawn")
    start, out = spawn.Barrier(processes), spawn.Queue()
    procs = [
        spawn.Process(
            target=append_worker,
            args=(url, key_pem, f"w{i}", threads, seconds, start, out),
        )
        for i in range(processes)
    ]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=seconds + 300) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        if proc.exitcode != 0:
            raise RuntimeError(f"a worker process failed ({proc.exitcode})")
    appends = sum(r[1] for r in results)
    elapsed = max(r[2] for r in results)
    sizes = [size for r in results for size in r[3]]
    return {
        "processes": processes,
        "appends_per_s": round(appends / elapsed),
        "batches": len(sizes),
        "mean_batch": round(statistics.fmean(sizes), 1) if sizes else 0,
        "load_average_1m_after": round(os.getloadavg()[0], 2),
    }


def traced_statements(trace: str) -> list[list[str]]:
    """The statements a client ran, from libpq's protocol trace, grouped by round trip (a
    group ends at each Sync, or simple Query, the client sends); each as its SQL text, also
    when the driver runs a statement it prepared earlier by name."""
    messages: list[str] = []
    for line in trace.splitlines():
        if line[:2] in ("F\t", "B\t"):
            messages.append(line)
        elif messages:
            messages[-1] += "\n" + line  # a multi-line statement's further lines
    sql_of: dict[str, str] = {}
    bound = ""
    groups: list[list[str]] = [[]]
    for message in messages:
        direction, _length, kind, fields = [*message.split("\t", 3), ""][:4]
        if direction != "F":
            continue
        if kind == "Parse":
            name, _, rest = fields.partition('" "')
            sql_of[name.strip(' "')] = rest
        elif kind == "Bind":
            bound = sql_of[fields.split('"')[3]]
        elif kind == "Execute":
            groups[-1].append(bound)
        elif kind == "Query":
            groups[-1].append(fields.strip(' "'))
        if kind in ("Sync", "Query"):
            groups.append([])
    return [g for g in groups if g]


def sequencer_round_trips(url: str, batches: int = 50) -> dict[str, object]:
    """Round trips of an append batch on the sequencer's connection, counted in libpq's
    protocol trace, and how many of them the client waits for while holding the head's lock
    (taken by the round trip with the ``FOR UPDATE`` read, released by the one with the
    ``COMMIT``). Between two batches another log on another engine appends (as another worker
    process would), so the trace also shows whether a batch reads tree nodes after another
    writer moved the head."""
    from psycopg.pq import Trace
    from sqlalchemy import event

    ours, theirs = db.make_engine(url), db.make_engine(url)
    signer = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
    options: dict[str, Any] = {"checkpoint_every_entries": 10**9, "checkpoint_every_seconds": 3600}
    log = AuditLog.for_engine(ours, signer, ORIGIN, **options)
    other = AuditLog.for_engine(theirs, signer, ORIGIN, **options)
    log.append(entry(0))
    ours.dispose()  # the connections from here on are opened anew, so traced
    with tempfile.TemporaryDirectory() as tmp:
        traced: list[tuple[Any, Any]] = []

        def trace(dbapi_connection: Any, _record: Any) -> None:
            handle = open(Path(tmp) / f"c{len(traced)}", "w")  # noqa: SIM115 - closed below
            dbapi_connection.pgconn.trace(handle.fileno())
            dbapi_connection.pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS | Trace.REGRESS_MODE)
            traced.append((dbapi_connection, handle))

        event.listen(ours, "connect", trace)
        for n in range(batches):
            other.append(entry(10_000 + n))
            log.append_many([entry(1_000 + 10 * n + i) for i in range(10)])
        event.remove(ours, "connect", trace)
        for connection, handle in traced:
            if not connection.closed:
                connection.pgconn.untrace()  # libpq flushes its buffered trace
            handle.close()
        groups = [
            g
            for i in range(len(traced))
            for g in traced_statements((Path(tmp) / f"c{i}").read_text())
        ]
    log.close()
    other.close()
    ours.dispose()
    theirs.dispose()
    held = 0
    locked_at: int | None = None
    for i, group in enumerate(groups):
        if any("FOR UPDATE" in sql for sql in group):
            locked_at = i
        if locked_at is not None and any(sql.startswith("COMMIT") for sql in group):
            held += i - locked_at
            locked_at = None
    return {
        "batches": batches,
        "round_trips_per_batch": round(len(groups) / batches, 2),
        "round_trips_holding_the_lock_per_batch": round(held / batches, 2),
        "node_reads": sum("FROM audit_nodes" in sql for g in groups for sql in g),
    }


def workers_scaling(url: str, rounds: int, threads: int, seconds: float) -> dict[str, object]:
    """One worker process against two, alternated (ABBA order), on one PostgreSQL log."""
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    key_pem = Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    runs: dict[int, list[dict[str, object]]] = {1: [], 2: []}
    for r in range(rounds):
        for processes in (1, 2) if r % 2 == 0 else (2, 1):
            load = os.getloadavg()[0]
            result = workers_round(url, key_pem, processes, threads, seconds)
            result["load_average_1m_before"] = round(load, 2)
            runs[processes].append(result)
            print(json.dumps(result), file=sys.stderr)
    one = statistics.median(float(str(r["appends_per_s"])) for r in runs[1])
    two = statistics.median(float(str(r["appends_per_s"])) for r in runs[2])
    return {
        "threads_per_process": threads,
        "seconds_per_run": seconds,
        "cpus": os.cpu_count(),
        "one_process": runs[1],
        "two_processes": runs[2],
        "median_appends_per_s": {"one_process": round(one), "two_processes": round(two)},
        "ratio_two_vs_one": round(two / one, 2),
        "sequencer": sequencer_round_trips(url),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=128)
    parser.add_argument("--per-thread", type=int, default=80)
    parser.add_argument("--proof-size", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pymerkle", action="store_true", help="also time pymerkle 7's trees")
    parser.add_argument("--pymerkle-size", type=int, default=100_000)
    parser.add_argument(
        "--witness-rounds", type=int, default=2, help="alternated rounds, witness against none"
    )
    parser.add_argument(
        "--workers",
        action="store_true",
        help="only the worker processes on PostgreSQL (5. above): one against two",
    )
    parser.add_argument("--worker-rounds", type=int, default=3)
    parser.add_argument("--worker-threads", type=int, default=32)
    parser.add_argument("--worker-seconds", type=float, default=5.0)
    args = parser.parse_args()
    if args.workers:
        with database("postgresql") as url:
            command.upgrade(db.alembic_config("audit", url), "heads")
            scaling = workers_scaling(
                url, args.worker_rounds, args.worker_threads, args.worker_seconds
            )
        scaling["goal_ratio_two_vs_one"] = 1.6  # the gateway's, for the whole request
        print(json.dumps({"postgresql": {"workers": scaling}}, indent=2))
        return
    report: dict[str, object] = {
        "threads": args.threads,
        "entries": args.threads * args.per_thread,
        "proof_tree_size": args.proof_size,
    }
    for backend in args.backends.split(","):
        result: dict[str, object] = {}
        with database(backend) as url:
            command.upgrade(db.alembic_config("audit", url), "heads")
            engine = db.make_engine(url)
            try:
                grouped = group_commit_rate(engine, args.threads, args.per_thread)
                plain = plain_insert_rate(url, args.threads, args.per_thread)
                result["group_commit"] = grouped
                result["plain_insert_baseline"] = plain
                result["ratio_vs_plain_insert"] = round(
                    grouped["appends_per_s"] / plain["inserts_per_s"], 2
                )
            finally:
                engine.dispose()
        with database(backend) as url:
            command.upgrade(db.alembic_config("audit", url), "heads")
            result["witness"] = witness_cost(
                url, args.threads, args.per_thread, args.witness_rounds
            )
        with database(backend) as url:
            command.upgrade(db.alembic_config("audit", url), "heads")
            engine = db.make_engine(url)
            try:
                seconds, root = bulk_load(engine, args.proof_size)
                result["bulk_load_s"] = round(seconds, 1)
                result["inclusion_proof"] = proof_latency(engine, args.proof_size, root)
                result["subject_listing"] = subject_listing(engine, args.proof_size)
            finally:
                engine.dispose()
        if backend == "postgresql":
            with database(backend) as url:
                command.upgrade(db.alembic_config("audit", url), "heads")
                result["workers"] = workers_scaling(
                    url, args.worker_rounds, args.worker_threads, args.worker_seconds
                )
        report[backend] = result
        print(json.dumps({backend: result}), file=sys.stderr)
    if args.pymerkle:
        report["pymerkle"] = pymerkle_latency(args.pymerkle_size)
    report["goals"] = {
        "appends_per_s": 5000,
        "inclusion_proof_ms_at_1m": 1.0,
        "ratio_one_witness_vs_none": 0.9,
        "tail_age_p99_s": 2.0,
        "ratio_two_worker_processes_vs_one": 1.6,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
