"""Bulk import: good rows land, bad rows are reported by line/field/reason without values,
nothing is half-written, re-runs are idempotent, and a SIGKILL mid-run loses or doubles nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, func, select, text

from gateway.db import make_engine
from identity import Idcs, PersonIn, Register
from identity.batches import BatchClaims, BatchLost
from identity.bulk import finish_import, import_file, plan_import, run_batches
from identity.synth import generate, write_csv, write_jsonl
from vault import Vault
from vault import tables as vt


def live_subjects(vault: Vault) -> int:
    with vault.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(vt.data_keys)).scalar_one())


def registered(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM rnp_persons")).scalar_one())


def population_file(path: Path, persons: int, seed: int = 21) -> list[dict]:
    records = list(generate(persons, seed=seed))
    with path.open("w", encoding="utf-8", newline="") as fh:
        (write_csv if path.suffix == ".csv" else write_jsonl)(iter(records), fh)
    return records


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_bad_rows_are_reported_and_good_rows_land_whole(
    register: Register, engine: Engine, vault: Vault, tmp_path: Path, suffix: str
) -> None:
    records = population_file(tmp_path / f"good{suffix}", 40)
    # Spoil some rows the way real files are spoiled.
    records[3]["birth_date"] = "1990-13-45"
    records[7]["cnie"] = "NOT-A-CNIE-123"
    records[7]["phone"] = "+33 1 23 45 67 89"
    records[12]["region"] = "Atlantis"
    records[20] = dict(records[2])  # the same person twice
    path = tmp_path / f"people{suffix}"
    with path.open("w", encoding="utf-8", newline="") as fh:
        (write_csv if suffix == ".csv" else write_jsonl)(iter(records), fh)
    offset = 2 if suffix == ".csv" else 1  # CSV line 1 is the header
    report = import_file(register, engine, path, batch_size=8)

    assert report.enrolled == 36 and report.rejected == 4
    assert registered(engine) == 36
    # Nothing half-written: one vault record per register row, none for rejected rows.
    assert live_subjects(vault) == 36
    reported = {(r.line, r.field) for r in report.rejects}
    assert reported == {
        (3 + offset, "birth_date"),
        (7 + offset, "cnie"),
        (7 + offset, "phone"),
        (12 + offset, "region"),
        (20 + offset, "record"),
    }
    text_of_report = json.dumps(report.as_json(), ensure_ascii=False)
    for spoiled in (
        "1990-13-45",
        "NOT-A-CNIE-123",
        "+33 1 23 45 67 89",
        "Atlantis",
        records[2]["given_name_lat"],
        records[2]["family_name_ar"],
    ):
        assert spoiled not in text_of_report


def test_malformed_lines_are_rejected_by_line_number(
    register: Register, engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "mixed.jsonl"
    good = list(generate(3, seed=2))
    lines = [
        json.dumps(good[0]),
        "{not json",
        "[1, 2]",
        "",
        json.dumps(good[1]),
        json.dumps({**good[2], "religion": "x"}),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = import_file(register, engine, path)
    assert report.enrolled == 2
    assert {(r.line, r.field) for r in report.rejects} == {
        (2, "record"),
        (3, "record"),
        (6, "religion"),
    }


def test_rerunning_a_finished_import_enrols_nothing_twice(
    register: Register, engine: Engine, vault: Vault, tmp_path: Path
) -> None:
    path = tmp_path / "p.jsonl"
    population_file(path, 60)
    first = import_file(register, engine, path, batch_size=25)
    again = import_file(register, engine, path, batch_size=25)
    assert first.enrolled == again.enrolled == 60 and again.resumed_lines == 60
    assert registered(engine) == 60 and live_subjects(vault) == 60
    # The same people under another file name are duplicates, not new persons.
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(path.read_bytes() + b"\n")
    third = import_file(register, engine, copy)
    assert third.enrolled == 0 and third.rejected == 60
    assert registered(engine) == 60 and live_subjects(vault) == 60


@pytest.mark.slow
def test_sigkill_during_import_then_rerun_enrols_every_row_exactly_once(
    database_url: str, migrated_urls: dict[str, str], tmp_path: Path
) -> None:
    persons = 2500
    path = tmp_path / "population.jsonl"
    population_file(path, persons, seed=77)
    (tmp_path / "data").mkdir(mode=0o700)  # the deployment `sijill init` would have made
    env = {
        **os.environ,
        "SIJILL_DATA_DIR": str(tmp_path / "data"),
        "SIJILL_DATABASE_URL": database_url,
        "SIJILL_RNP_IMPORT_BATCH_SIZE": "100",
        # The killed run's claim on its last batch must run out before the re-run takes it.
        "SIJILL_RNP_IMPORT_CLAIM_SECONDS": "2",
    }
    command = [str(Path(sys.executable).with_name("sijill")), "rnp", "import", str(path)]
    engine = make_engine(database_url)
    try:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # Kill it once some batches, but not all, have committed.
        deadline = time.monotonic() + 120
        done = 0
        while time.monotonic() < deadline and proc.poll() is None:
            with engine.connect() as conn:
                done = conn.execute(
                    text("SELECT count(*) FROM rnp_import_batches WHERE done_at IS NOT NULL")
                ).scalar_one()
            if done >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert 0 < registered(engine) < persons

        rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr
        assert "were imported by an earlier run" in rerun.stdout
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT count(*), count(DISTINCT idcs) FROM rnp_persons")
            ).one()
            pending = conn.execute(text("SELECT count(*) FROM rnp_pending_vault")).scalar_one()
            keys = conn.execute(select(func.count()).select_from(vt.data_keys)).scalar_one()
        assert tuple(rows) == (persons, persons)
        assert pending == 0
        # The killed batch's vault records were erased on resume: no orphans.
        assert keys == persons
        report = json.loads((tmp_path / "population.jsonl.rejects.json").read_text())
        assert report["enrolled"] == persons and report["rejects"] == []
    finally:
        engine.dispose()


def test_a_worker_whose_claim_expired_cannot_commit_its_batch(
    register: Register, engine: Engine, vault: Vault, tmp_path: Path
) -> None:
    path = tmp_path / "p.jsonl"
    population_file(path, 30)
    job = plan_import(engine, path, batch_size=10)
    stalled = BatchClaims(engine, job.job_id, ttl_s=0.3)
    batch = stalled.claim()
    assert batch is not None and batch.number == 0
    time.sleep(0.4)  # the stalled worker's claim runs out; another worker takes the batch
    other = BatchClaims(engine, job.job_id, ttl_s=0.5)
    taken = other.claim()
    assert taken is not None and taken.number == 0 and taken.token == batch.token + 1
    ignored = {"household", "role"}
    people = [
        PersonIn.model_validate({k: v for k, v in r.items() if k not in ignored})
        for r in generate(10, seed=5)
    ]

    def fenced(conn: Connection, results: list[Idcs | None]) -> None:
        stalled.complete(conn, batch, enrolled=len(results), rejected=0)

    with pytest.raises(BatchLost):
        register.enrol_many(people, job_id=batch.tag, in_transaction=fenced)
    # Nothing of the stalled worker's batch is left: no row, no vault record, no pending entry.
    assert registered(engine) == 0 and live_subjects(vault) == 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM rnp_pending_vault")).scalar_one() == 0
    # That worker dies too; a third does batches 1 and 2, then goes back for batch 0 once the
    # claim on it runs out: the whole file, each person once.
    run_batches(register, engine, path, job.job_id)
    report = finish_import(engine, job)
    assert report.enrolled == 30 and registered(engine) == 30 and live_subjects(vault) == 30


def test_an_expired_claim_cannot_commit_even_before_another_worker_takes_the_batch(
    register: Register, engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "p.jsonl"
    population_file(path, 5)
    job = plan_import(engine, path, batch_size=5)
    stalled = BatchClaims(engine, job.job_id, ttl_s=0.2)
    batch = stalled.claim()
    assert batch is not None
    assert BatchClaims(engine, job.job_id, ttl_s=30).claim() is None  # live: nobody else
    time.sleep(0.3)
    with pytest.raises(BatchLost), engine.begin() as conn:
        stalled.complete(conn, batch, enrolled=0, rejected=0)
    assert BatchClaims(engine, job.job_id, ttl_s=30).claim() is not None
