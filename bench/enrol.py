"""Bulk enrolment throughput: persons/s through ``sijill rnp import``'s code path.

For each backend (SQLite file, PostgreSQL schema) and size (100,000 by default; add 1,000,000
with --million) this generates a synthetic population file (not timed), imports it with
:func:`gateway.rnp.audited_import` (the command's path: one audit entry per person enrolled,
in the batch's transaction) over the real vault (file keys), and reports persons/s, the
share of time spent in the vault (encryption + blind indexes), and the projection to the RNP's
13.6 million persons. Baseline, measured in the same run on the same database: a plain
``executemany`` INSERT of the same number of register-shaped rows, same batch size (ratio =
import time / baseline time). A second reference, ``storage_floor_persons_per_s``, writes every
row an enrolment writes (pending entry, vault subject, wrapped key, one ciphertext per field,
register row) with random bytes in place of ciphertexts, straight through the driver (COPY on
PostgreSQL, sqlite3 executemany) in the import's transactions, into a fresh database: what the
database allows with no validation, hashing or encryption at all. With two sizes,
``time_ratio`` = t(1M) / t(100k); 10 means linear.

    .venv/bin/python bench/enrol.py [--persons N] [--million] [--backends sqlite,postgresql]
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
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit import AuditLog, NoteSigner
from gateway.db import make_engine, upgrade
from gateway.rnp import audited_import
from identity import Register
from identity.synth import generate, write_jsonl
from vault import DecisionVerifier, FileKeyProvider, Vault

RNP_SIZE = 13_600_000
GOAL = 10_000
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class TimedVault:
    """The real vault, with the time spent in each call the register makes added up."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.seconds = {"store_many": 0.0, "blind_index": 0.0}

    def _timed(self, name: str, *args: Any) -> Any:
        t = time.perf_counter()
        try:
            return getattr(self.vault, name)(*args)
        finally:
            self.seconds[name] += time.perf_counter() - t

    def store_many(self, records: Any) -> int:
        return int(self._timed("store_many", list(records)))

    def blind_index(self, kind: str, value: str) -> str:
        return str(self._timed("blind_index", kind, value))

    def erase(self, subject: str) -> None:
        self.vault.erase(subject)

    def mac(self, label: str, value: bytes) -> bytes:
        return self.vault.mac(label, value)


@contextmanager
def database(backend: str, workdir: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:8]}.db'}"
        return
    base = os.environ.get("SIJILL_TEST_DATABASE_URL", PG_DEFAULT)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        sep = "&" if "?" in base else "?"
        yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def baseline(url: str, persons: int, batch: int) -> float:
    """Seconds for a plain executemany of ``persons`` register-shaped rows, ``batch`` a time."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(
                "CREATE TABLE bench_plain (idcs VARCHAR(10) PRIMARY KEY, vault_subject "
                "VARCHAR(64) NOT NULL UNIQUE, status VARCHAR(10) NOT NULL, version INTEGER NOT "
                "NULL, cnie_index VARCHAR(128) UNIQUE, name_birth_ar_index VARCHAR(128) UNIQUE, "
                "name_birth_lat_index VARCHAR(128) UNIQUE, created_at TIMESTAMP, "
                "updated_at TIMESTAMP)"))  # fmt: skip
        now = datetime.now(UTC).replace(tzinfo=None)
        rows = [
            {"idcs": f"{i:010d}", "s": secrets.token_hex(16), "c": secrets.token_hex(32),
             "a": secrets.token_hex(32), "l": secrets.token_hex(32), "t": now}
            for i in range(persons)
        ]  # fmt: skip
        insert = text("INSERT INTO bench_plain VALUES (:idcs, :s, 'active', 1, :c, :a, :l, :t, :t)")
        start = time.perf_counter()
        for i in range(0, persons, batch):
            with engine.begin() as conn:
                conn.execute(insert, rows[i : i + batch])
        return time.perf_counter() - start
    finally:
        engine.dispose()


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


def run(backend: str, persons: int, batch: int, workdir: Path) -> dict[str, Any]:
    source = workdir / f"population-{persons}.jsonl"
    if not source.exists():
        with source.open("w", encoding="utf-8") as fh:
            write_jsonl(generate(persons, seed=2026), fh)
    with database(backend, workdir) as url:
        upgrade({"main": url, "vault": url, "audit": url})
        engine = make_engine(url)
        try:
            verifier = DecisionVerifier(Ed25519PrivateKey.generate().public_key())
            vault = TimedVault(Vault(engine, FileKeyProvider(workdir / "keys"), verifier))
            register = Register(engine, vault)  # type: ignore[arg-type]
            origin = "bench.sijill.invalid/audit"
            signer = NoteSigner(origin, Ed25519PrivateKey.generate())
            audit = AuditLog.for_engine(engine, signer, origin)
            start = time.perf_counter()
            report = audited_import(
                register, vault.vault, audit, engine, source, one_database=True, batch_size=batch
            )
            seconds = time.perf_counter() - start
            audit_entries = audit.size()
            audit.close()
        finally:
            engine.dispose()
        base = baseline(url, persons, batch)
    floor = storage_floor(backend, persons, batch, workdir)
    rate = report.enrolled / seconds
    return {
        "backend": backend, "persons": persons, "enrolled": report.enrolled,
        "rejected_as_duplicates": report.rejected, "batch_size": batch,
        "audit_entries": audit_entries,
        "seconds": round(seconds, 2), "persons_per_s": round(rate),
        "vault_store_share": round(vault.seconds["store_many"] / seconds, 3),
        "blind_index_share": round(vault.seconds["blind_index"] / seconds, 3),
        "baseline_executemany_s": round(base, 3),
        "baseline_rows_per_s": round(persons / base),
        "ratio_vs_baseline": round(seconds / base, 1),
        "storage_floor_s": round(floor, 3),
        "storage_floor_persons_per_s": round(persons / floor),
        "ratio_vs_storage_floor": round(seconds / floor, 2),
        "projection_13_6M_minutes": round(RNP_SIZE / rate / 60, 1),
        "meets_goal_10k_per_s": rate >= GOAL,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--million", action="store_true", help="also run 1,000,000 persons")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    sizes = [args.persons] + ([1_000_000] if args.million else [])
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sijill-bench-enrol-") as tmp:
        workdir = Path(tmp)
        for backend in args.backends.split(","):
            for size in sizes:
                results.append(run(backend, size, args.batch, workdir))
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    summary: dict[str, Any] = {
        "benchmark": "enrol",
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "runs": results,
    }
    if len(sizes) == 2:
        seconds = {(r["backend"], r["persons"]): r["seconds"] for r in results}
        summary["time_ratio_1M_over_small"] = {
            b: round(seconds[(b, sizes[1])] / seconds[(b, sizes[0])], 2)
            for b in args.backends.split(",")
        }
    backends = {r["backend"]: r for r in results if r["persons"] == sizes[0]}
    if {"sqlite", "postgresql"} <= set(backends):
        summary["postgresql_over_sqlite_time"] = round(
            backends["postgresql"]["seconds"] / backends["sqlite"]["seconds"], 2
        )
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
