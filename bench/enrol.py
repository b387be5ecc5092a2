"""Bulk enrolment throughput: persons/s through ``sijill rnp import``'s code path.

For each backend (SQLite file, PostgreSQL schema) and size (100,000 by default; add 1,000,000
with --million) this generates a synthetic population file (not timed) and imports it with
:func:`gateway.rnp.audited_import`, the command's path (batches claimed by workers, one audit
entry per person enrolled in each batch's transaction, the real vault with file keys), once per
worker count of ``--workers`` (PostgreSQL; SQLite has one writer and runs one worker), each
into a fresh database. The *storage floor*, measured in the same run and alternated with the
imports (``--rounds``: the order of the imports is reversed every other round, each figure the
best of its rounds), writes every row an enrolment writes (pending entry, vault subject, wrapped
key, one ciphertext per field, register row) with random bytes in place of ciphertexts,
straight through the driver (COPY on PostgreSQL, sqlite3 executemany) in the import's
transactions, into a fresh database: what the database allows with no validation, hashing or
encryption at all. Ratios: ``rate_over_storage_floor`` (import rate / floor rate, 1 = as fast
as the bare writes), ``workers_<n>_over_1`` (rate with n workers / rate with one); with two
sizes, ``time_ratio`` = t(1M) / t(small) with the most workers (10 means linear).

    .venv/bin/python bench/enrol.py [--persons N] [--million] [--workers 1,2] [--rounds R]
        [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import cpu_seconds, fresh_schema, server_cpu_seconds
from gateway.db import make_engine, upgrade
from gateway.rnp import audited_import
from gateway.settings import load_settings
from identity.synth import generate, write_jsonl

RNP_SIZE = 13_600_000
GOAL = 10_000
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def database(backend: str, workdir: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:8]}.db'}"
        return
    with fresh_schema(os.environ.get("SIJILL_TEST_DATABASE_URL", PG_DEFAULT)) as url:
        yield url


FIELDS_PER_PERSON = 13  # measured on the synthetic population: minors have no CNIE or phone


def storage_floor(backend: str, persons: int, batch: int, workdir: Path) -> float:
    """Seconds to write an import's rows at the driver, no Python work per value (see above)."""
    with database(backend, workdir) as url:
        upgrade({"main": url, "vault": url, "audit": url})
        engine = make_engine(url)
        try:
            now = datetime.now(UTC)
            stamp = now.isoformat(sep=" ") if backend == "sqlite" else now
            # Distinct random IDCS-like keys (a random draw of a million collides ~50 times).
            rows = -(-persons // batch) * batch  # whole batches, as written below
            idcs = iter(secrets.SystemRandom().sample(range(10**9, 10**10), rows))
            batches = []
            for _ in range(0, persons, batch):
                prefix = "p_" + secrets.token_hex(8)
                subjects = sorted(prefix + secrets.token_hex(8) for _ in range(batch))
                batches.append((
                    [(s, "job", stamp) for s in subjects],
                    [(s, "person", 1, None) for s in subjects],
                    [(s, 1, 1, os.urandom(60), 1) for s in subjects],
                    [(s, f"field_{i}", os.urandom(45))
                     for s in subjects for i in range(FIELDS_PER_PERSON)],
                    [(str(next(idcs)), s, "active", 1, secrets.token_hex(32),
                      secrets.token_hex(32), secrets.token_hex(32), stamp, stamp)
                     for s in subjects],
                    [(s,) for s in subjects],
                ))  # fmt: skip
            tables = [
                ("rnp_pending_vault", 3), ("vault_subjects", 4), ("vault_data_keys", 5),
                ("vault_fields", 3), ("rnp_persons", 9),
            ]  # fmt: skip
            raw: Any = engine.raw_connection()
            try:
                driver = raw.driver_connection

                def write(table: int, rows: list[Any]) -> None:
                    name, width = tables[table]
                    if backend == "sqlite":
                        marks = ", ".join("?" * width)
                        driver.executemany(f"INSERT INTO {name} VALUES ({marks})", rows)
                        return
                    with driver.cursor() as cur, cur.copy(f"COPY {name} FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)

                def begin() -> None:
                    if backend == "sqlite":
                        driver.execute("BEGIN")

                start = time.perf_counter()
                for pend, subjects, keys, fields, register, unpend in batches:
                    begin()
                    write(0, pend)
                    driver.commit() if backend != "sqlite" else driver.execute("COMMIT")
                    begin()
                    write(1, subjects)
                    write(2, keys)
                    write(3, fields)
                    driver.commit() if backend != "sqlite" else driver.execute("COMMIT")
                    begin()
                    write(4, register)
                    if backend == "sqlite":
                        driver.executemany(
                            "DELETE FROM rnp_pending_vault WHERE vault_subject = ?", unpend
                        )
                        driver.execute("COMMIT")
                    else:
                        driver.execute(
                            "DELETE FROM rnp_pending_vault WHERE vault_subject = ANY(%s)",
                            ([u[0] for u in unpend],),
                        )
                        driver.commit()
                return time.perf_counter() - start
            finally:
                raw.close()
        finally:
            engine.dispose()


def import_once(
    backend: str, source: Path, workers: int, batch: int, workdir: Path
) -> dict[str, Any]:
    """One import of ``source`` into a fresh database, as ``sijill rnp import --workers``."""
    with database(backend, workdir) as url:
        upgrade({"main": url, "vault": url, "audit": url})
        # A data directory of its own: the audit signer remembers its last checkpoint there,
        # and a fresh database under an old memory is a rolled-back log.
        data = workdir / f"data-{uuid.uuid4().hex[:8]}"
        data.mkdir(mode=0o700)
        settings = load_settings(data_dir=data, database_url=url)
        cpu0, server0 = cpu_seconds(), server_cpu_seconds()
        start = time.perf_counter()
        report = audited_import(settings, source, workers=workers, batch_size=batch)
        seconds = time.perf_counter() - start
        cpu_s, server_s = cpu_seconds() - cpu0, server_cpu_seconds() - server0
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                entries = conn.execute(
                    text("SELECT count(*) FROM audit_entries WHERE action = 'enrol'")
                ).scalar_one()
        finally:
            engine.dispose()
    return {"workers": workers, "seconds": round(seconds, 2),
            "persons_per_s": round(report.enrolled / seconds), "enrolled": report.enrolled,
            "rejected": report.rejected, "enrol_audit_entries": entries,
            "cpu_us_per_person": round(cpu_s / report.enrolled * 1e6, 1),
            "server_cpu_us_per_person": round(server_s / report.enrolled * 1e6, 1)}  # fmt: skip


def run(
    backend: str, persons: int, workers: list[int], rounds: int, batch: int, workdir: Path
) -> dict[str, Any]:
    source = workdir / f"population-{persons}.jsonl"
    if not source.exists():
        with source.open("w", encoding="utf-8") as fh:
            write_jsonl(generate(persons, seed=2026), fh)
    counts = workers if backend == "postgresql" else [1]
    floors: list[float] = []
    imports: dict[int, list[dict[str, Any]]] = {n: [] for n in counts}
    for round_no in range(rounds):
        floors.append(storage_floor(backend, persons, batch, workdir))
        for n in counts if round_no % 2 == 0 else counts[::-1]:
            imports[n].append(import_once(backend, source, n, batch, workdir))
            print(json.dumps({"backend": backend, **imports[n][-1]}), file=sys.stderr, flush=True)
    floor = min(floors)
    best = {n: min(runs, key=lambda r: r["seconds"]) for n, runs in imports.items()}
    result: dict[str, Any] = {
        "backend": backend, "persons": persons, "batch_size": batch, "rounds": rounds,
        "storage_floor_s": round(floor, 3),
        "storage_floor_persons_per_s": round(persons / floor),
        "imports": [
            {**r, "rate_over_storage_floor": round(floor / r["seconds"], 2),
             "projection_13_6M_minutes": round(RNP_SIZE / r["persons_per_s"] / 60, 1),
             "meets_goal_10k_per_s": r["persons_per_s"] >= GOAL}
            for r in best.values()
        ],
    }  # fmt: skip
    for n in counts[1:]:
        result[f"workers_{n}_over_1"] = round(best[1]["seconds"] / best[n]["seconds"], 2)
    # The most these cores allow this code, whatever the number of workers: every core busy
    # with the import's own CPU and the local server's, per person, as one worker spent them.
    one = best[1]
    per_person_us = one["cpu_us_per_person"] + one["server_cpu_us_per_person"]
    cores = os.cpu_count() or 1
    result["cpu_bound_persons_per_s"] = round(cores / per_person_us * 1e6)
    result["cpu_bound_over_1_worker"] = round(cores / per_person_us * 1e6 / one["persons_per_s"], 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--million", action="store_true", help="also run 1,000,000 persons")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare (1 first)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    sizes = [args.persons] + ([1_000_000] if args.million else [])
    workers = sorted({int(n) for n in args.workers.split(",")} | {1})
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sijill-bench-enrol-") as tmp:
        workdir = Path(tmp)
        for backend in args.backends.split(","):
            for size in sizes:
                results.append(run(backend, size, workers, args.rounds, args.batch, workdir))
    summary: dict[str, Any] = {
        "benchmark": "enrol",
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "runs": results,
    }
    if len(sizes) == 2:
        seconds = {
            (r["backend"], r["persons"]): max(r["imports"], key=lambda i: i["workers"])["seconds"]
            for r in results
        }
        summary["time_ratio_1M_over_small"] = {
            b: round(seconds[(b, sizes[1])] / seconds[(b, sizes[0])], 2)
            for b in args.backends.split(",")
        }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
