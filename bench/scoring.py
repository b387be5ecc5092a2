"""RSU national rescoring throughput: households scored per second by the real
``sijill rsu rescore`` command (claim a batch, decrypt each household's feature vector in the
vault, score with numpy, encrypt the score, one audit entry per household, commit the batch),
against the bare numpy scoring of the same plaintext declarations in the same run.

    .venv/bin/python bench/scoring.py [--households 100000] [--workers 2] [--batch 5000]
                                      [--postgres URL] [--ordered-ids] [--no-vectors]
                                      [--rounds N]

``--households 1000000`` for the large run. SQLite (a temporary data dir) unless ``--postgres``
names a server (a scratch schema is created and dropped). Household ids and vault subjects are
random, as the register draws them, unless ``--ordered-ids`` (the best case). Every household
was scored at registration, which keeps its feature vector; ``--no-vectors`` loads records
with a score and no vector (the worst case: the rescoring derives each vector from the
declaration and stores it). Prints one JSON
object, with the projection to the RSU's 2.8 million households.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import create_engine, insert, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import cpu_seconds, server_cpu_seconds
from gateway import db
from gateway.settings import load_settings
from identity.synth import REGIONS
from rsu.declarations import DeclarationIn
from rsu.synthetic import declaration
from rsu.tables import households
from vault import ModelSet, ScoringModel

RSU_HOUSEHOLDS = 2_800_000


def synthetic(n: int, batch: int, seed: int = 1) -> Iterator[list[dict[str, object]]]:
    """``n`` declarations with members, as rsu/declarations.py records them in the vault, in chunks
    of ``batch`` (a million households are never all in memory at once)."""
    rng = random.Random(seed)
    regions = list(REGIONS)
    out: list[dict[str, object]] = []
    for i in range(n):
        region = rng.choice(regions)
        size = max(1, min(12, round(rng.gauss(4.6, 2))))
        decl = declaration(rng, region, rng.choice(REGIONS[region]), size)
        if i < 100:
            DeclarationIn.model_validate(decl)  # the generator keeps to the API's schema
        members = [{"idcs": f"{2_000_000_000 + i * 16 + k}", "relation": "head" if k == 0
                    else "child", "sex": rng.choice("FM"), "age": 40 if k == 0
                    else rng.randint(0, 30), "education": rng.choice(
                        ("none", "primary", "secondary", "higher")),
                    "occupation": rng.choice(("employed", "inactive", "student")),
                    "disability": rng.random() < 0.05} for k in range(size)]  # fmt: skip
        decl["members"] = members
        out.append(decl)
        if len(out) == batch:
            yield out
            out = []
    if out:
        yield out


def load(
    settings,
    chunks: Iterable[list[dict[str, object]]],
    *,
    ordered_ids: bool = False,
    vectors: bool = True,
) -> float:  # type: ignore[no-untyped-def]
    """Put the households in the vault and the main store directly (setup, not measured).
    Returns the seconds the bare numpy scoring of the same declarations took (the baseline:
    features + X·β on plaintext already in memory, no decryption, storage or audit).

    Each household is then scored by the vault, as registration does, which also keeps the
    feature vector it scored from (vault.scoring). Without ``vectors``, the records hold the
    score and no vector (the rescoring then derives every vector from its declaration)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from gateway.keys import build_key_provider
    from vault import DecisionVerifier, Vault

    engine = db.make_engine(settings.database_url)
    vault_engine = db.make_engine(settings.vault_database_url)
    provider = build_key_provider(settings)
    vault = Vault(
        vault_engine, provider, DecisionVerifier(Ed25519PrivateKey.generate().public_key())
    )
    now = datetime.now(UTC)
    models = ModelSet.load("v1")
    bare_s = 0.0
    # Identifiers as rsu/households.py draws them (random tokens, unrelated to each other): a
    # batch of households in registration order then reaches vault records all over the
    # table, as it does in a register in service. Seeded, so every run loads the same layout. With
    # ``ordered_ids`` both follow the load order instead: the best case, where a batch's rows
    # lie together in every table.
    ids = random.Random(7)
    loaded = 0
    for chunk in chunks:
        areas = {
            area: [i for i, d in enumerate(chunk) if d["area"] == area]
            for area in ("urban", "rural")
        }
        t0 = time.perf_counter()
        raw = {
            area: models.for_area(area).raw_scores([chunk[i] for i in positions])
            for area, positions in areas.items()
        }
        bare_s += time.perf_counter() - t0
        # Registration scores each household (rsu/households.py), so a register in service has a
        # score on every record, which a rescoring replaces in place: stored here the same way
        # (the baseline's scores, in their published form).
        scored: dict[int, tuple[str, ScoringModel]] = {}
        for area, positions in areas.items():
            model = models.for_area(area)
            values = (model.quantise(float(v)) for v in raw[area])
            scored.update((i, (v, model)) for i, v in zip(positions, values, strict=True))
        records = []
        rows = []
        for position, decl in enumerate(chunk):
            value, model = scored[position]
            if ordered_ids:
                subject, household_id = f"hh_{loaded:032d}", f"h_{loaded:024d}"
            else:
                subject, household_id = (
                    "hh_" + ids.randbytes(16).hex(),
                    "h_" + ids.randbytes(12).hex(),
                )
            loaded += 1
            members = decl["members"]
            assert isinstance(members, list)
            records.append((subject, "household", {
                "head": members[0]["idcs"], "size": len(members), "area": decl["area"],
                "region": decl["region"], "province": decl["province"],
                "members": json.dumps([{"idcs": m["idcs"], "relation": m["relation"]}
                                      for m in members]),
                "declaration": json.dumps(decl, ensure_ascii=False, separators=(",", ":")),
                **({} if vectors else {"score": f"{value} {model.version} {model.digest}"}),
            }))  # fmt: skip
            # Registered one after another, as through the register (which stamps each).
            created = now + timedelta(microseconds=loaded)
            rows.append({"household_id": household_id, "vault_subject": subject,
                         "model_version": model.version, "scored_at": created,
                         "created_at": created, "updated_at": created})  # fmt: skip
        vault.store_many(records)
        if vectors:
            vault.score_many([subject for subject, _kind, _fields in records], models)
        with engine.begin() as conn:
            conn.execute(insert(households), rows)
    provider.close()
    # One ANALYZE a database (main and vault are usually the same one).
    by_url = {str(e.url): e for e in (engine, vault_engine)}
    for store in by_url.values():
        if store.dialect.name == "postgresql":
            # A register that has been in service has planner statistics; tables filled a
            # second ago have none until autovacuum runs, and plans made without them are not
            # the ones a deployment gets.
            with store.begin() as conn:
                conn.execute(text("ANALYZE"))
    engine.dispose()
    vault_engine.dispose()
    return bare_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--postgres", default=None, help="PostgreSQL URL (scratch schema)")
    parser.add_argument(
        "--ordered-ids",
        action="store_true",
        help="household ids and vault subjects in load order (best case), not random",
    )
    parser.add_argument(
        "--no-vectors",
        action="store_true",
        help="records with a score and no feature vector (the rescoring derives each one)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="rescore the same register this many times (the audit log grows a round each)",
    )
    parser.add_argument(
        "--separate-stores",
        action="store_true",
        help="SQLite: main, vault and audit in three files (three write locks)",
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="sijill-bench-scoring-"))
    url = f"sqlite:///{tmp / 'sijill.db'}"
    schema = None
    if args.postgres:
        schema = "bench_" + uuid.uuid4().hex[:8]
        admin = create_engine(args.postgres)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        url = (
            args.postgres
            + ("&" if "?" in args.postgres else "?")
            + "options="
            + quote(f"-csearch_path={schema}")
        )
    try:
        stores = {}
        if args.separate_stores and not schema:
            stores = {
                "vault_database_url": f"sqlite:///{tmp / 'vault.db'}",
                "audit_database_url": f"sqlite:///{tmp / 'audit.db'}",
            }
        settings = load_settings(data_dir=tmp / "data", database_url=url, **stores)
        settings.prepare_data_dir()
        db.upgrade(settings.database_urls)

        t0 = time.perf_counter()
        bare_s = load(
            settings,
            synthetic(args.households, 1000),
            ordered_ids=args.ordered_ids,
            vectors=not args.no_vectors,
        )
        setup_s = time.perf_counter() - t0 - bare_s

        # The command itself, in a process of its own as an operator runs it (its start-up
        # included), not a call from this one, whose heap the load above has grown.
        env = {
            **os.environ,
            "SIJILL_DATA_DIR": str(settings.data_dir),
            **{f"SIJILL_{k.upper()}": v for k, v in [("database_url", url), *stores.items()]},
        }
        command = [
            str(Path(sys.executable).with_name("sijill")),
            "rsu", "rescore", "--model", "v1",
            "--batch-size", str(args.batch), "--workers", str(args.workers),
        ]  # fmt: skip
        rounds = []
        for _ in range(args.rounds):
            load_before = os.getloadavg()[0]
            cpu0 = cpu_seconds()
            server0 = server_cpu_seconds()
            t0 = time.perf_counter()
            run = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            full_s = time.perf_counter() - t0
            cpu_s = cpu_seconds() - cpu0
            server_s = server_cpu_seconds() - server0
            if run.returncode != 0:
                raise SystemExit(f"sijill rsu rescore failed:\n{run.stderr}")
            report = json.loads(run.stdout)
            assert report["scored_now"] == args.households, report
            rounds.append((full_s, cpu_s, server_s, load_before))
        full_s, cpu_s, server_s, load_before = rounds[0]
        rate = args.households / full_s
        bare_rate = args.households / bare_s
        print(json.dumps({
            "benchmark": "rsu_rescore",
            "backend": "postgresql" if schema else "sqlite",
            "separate_stores": bool(stores),
            "ids": "ordered" if args.ordered_ids else "random",
            "feature_vectors": not args.no_vectors,
            "households": args.households,
            "workers": args.workers,
            "batch": args.batch,
            "setup_seconds": round(setup_s, 1),
            "rescore_seconds": round(full_s, 2),
            "households_per_s": round(rate),
            "baseline_bare_numpy_households_per_s": round(bare_rate),
            "ratio_full_to_bare": round(rate / bare_rate, 4),
            "projected_rsu_2_8m_seconds": round(RSU_HOUSEHOLDS / rate),
            "goal_households_per_s": 15_000,
            "cpu_count": os.cpu_count(),
            # The machine may be shared: CPU time per household does not depend on how much
            # of the cores other work took, and the load average says how much that was.
            "cpu_seconds": round(cpu_s, 1),
            "cpu_us_per_household": round(cpu_s / args.households * 1e6, 1),
            # The local PostgreSQL server's processes (their share of the two cores).
            "server_cpu_us_per_household": round(server_s / args.households * 1e6, 1),
            "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            # Each round rescores the same register again: the audit log holds the entries of
            # the rounds before (one a household each), as it does in service.
            "rounds": [{
                "log_entries_before": i * args.households,
                "households_per_s": round(args.households / r[0]),
                "cpu_us_per_household": round(r[1] / args.households * 1e6, 1),
                "server_cpu_us_per_household": round(r[2] / args.households * 1e6, 1),
            } for i, r in enumerate(rounds)],
        }))  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # a million households is gigabytes of SQLite
        if schema:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


if __name__ == "__main__":
    main()
