"""``sijill rnp import`` cannot leak and does not forget (issue 21): a file it cannot read as
persons (no header, a wrong header, nothing at all) is refused whole, naming columns, never a
value, with nothing written; what it enrols is on the audit log, person by person, like
enrolment over HTTP, and the import itself (start, end, counts) is too. SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner, Result

from audit import AuditLog, EntryFilter
from gateway.cli import app as root_app
from gateway.cli import register as register_commands
from gateway.db import make_engine
from gateway.deploy import open_register
from gateway.keys import build_audit_log
from identity.synth import CSV_COLUMNS, generate, write_csv, write_jsonl


@pytest.fixture
def cli(settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SIJILL_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SIJILL_DATABASE_URL", settings.database_url)
    settings.prepare_data_dir()
    if not any(g.name == "rnp" for g in root_app.registered_groups):
        register_commands.all(root_app)
    return CliRunner()


@pytest.fixture
def audit_log(settings) -> Iterator[AuditLog]:  # type: ignore[no-untyped-def]
    engine = make_engine(settings.audit_database_url)
    log = build_audit_log(settings, engine)
    yield log
    log.close()
    engine.dispose()


def _rows(settings: Any, table: str) -> int:  # type: ignore[misc]
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def _population(path: Path, persons: int, *, header: bool = True) -> list[dict[str, Any]]:
    records = list(generate(persons, seed=2121))
    with path.open("w", encoding="utf-8", newline="") as fh:
        write_csv(iter(records), fh)
    if not header:
        path.write_text(path.read_text(encoding="utf-8").split("\n", 1)[1], encoding="utf-8")
    return records


# Codes ("M", "MAR", "head" …) occur in any text and prove nothing; the rest is personal data.
_CODES = {"household", "role", "sex", "nationality", "residency_status"}


def _values(records: list[dict[str, Any]]) -> set[str]:
    """Every cell value of the file that could identify someone."""
    return {str(v) for r in records for k, v in r.items() if k not in _CODES and v is not None}


def _import(cli: CliRunner, path: Path) -> Result:
    return cli.invoke(root_app, ["rnp", "import", str(path)])


def _assert_nothing_written(settings: Any, path: Path) -> None:  # type: ignore[misc]
    assert not path.with_name(path.name + ".rejects.json").exists()
    for table in ("rnp_import_jobs", "rnp_import_rejects", "rnp_persons"):
        assert _rows(settings, table) == 0, table


def test_a_file_without_header_is_refused_whole_and_no_value_of_it_appears_anywhere(
    cli: CliRunner, settings: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "people.csv"
    records = _population(path, 12, header=False)
    with caplog.at_level(logging.DEBUG):
        result = _import(cli, path)
    assert result.exit_code != 0
    assert "not a header" in result.output and "given_name_lat" in result.output
    _assert_nothing_written(settings, path)
    seen = result.output + caplog.text
    leaked = sorted(v for v in _values(records) if v in seen)
    assert leaked == []


def test_a_missing_column_is_named_and_nothing_is_written(
    cli: CliRunner, settings: Any, tmp_path: Path
) -> None:
    path = tmp_path / "people.csv"
    _population(path, 5)
    lines = path.read_text(encoding="utf-8").split("\n")
    at = CSV_COLUMNS.index("region")
    cut = [",".join(c for i, c in enumerate(line.split(",")) if i != at) for line in lines]
    path.write_text("\n".join(cut), encoding="utf-8")
    result = _import(cli, path)
    assert result.exit_code != 0
    assert "missing columns: region" in result.output
    _assert_nothing_written(settings, path)


def test_an_unknown_or_repeated_column_is_refused_by_position_and_name(
    cli: CliRunner, settings: Any, tmp_path: Path
) -> None:
    path = tmp_path / "people.csv"
    _population(path, 3)
    header, rest = path.read_text(encoding="utf-8").split("\n", 1)
    path.write_text(f"{header},Benali,phone\n{rest}", encoding="utf-8")
    result = _import(cli, path)
    assert result.exit_code != 0
    position = len(CSV_COLUMNS) + 1
    assert f"unknown columns at positions {position}" in result.output
    assert "duplicated columns: phone" in result.output
    assert "Benali" not in result.output
    _assert_nothing_written(settings, path)


@pytest.mark.parametrize("content", ["", "\n", ",".join(CSV_COLUMNS) + "\n"])
def test_an_empty_file_exits_non_zero(
    cli: CliRunner, settings: Any, tmp_path: Path, content: str
) -> None:
    path = tmp_path / "people.csv"
    path.write_text(content, encoding="utf-8")
    result = _import(cli, path)
    assert result.exit_code != 0
    _assert_nothing_written(settings, path)


def test_reject_reports_hold_lines_columns_and_codes_never_a_value(
    cli: CliRunner, settings: Any, tmp_path: Path
) -> None:
    path = tmp_path / "people.csv"
    records = list(generate(10, seed=33))
    records[2]["birth_date"] = "1990-13-45"
    records[4]["region"] = "Atlantis"
    records[6] = dict(records[1])
    with path.open("w", encoding="utf-8", newline="") as fh:
        write_csv(iter(records), fh)
    result = _import(cli, path)
    assert result.exit_code == 0, result.output
    report = json.loads(path.with_name("people.csv.rejects.json").read_text(encoding="utf-8"))
    assert {(r["line"], r["field"], r["reason"]) for r in report["rejects"]} == {
        (4, "birth_date", "date_from_datetime_parsing"),
        (6, "region", "is_not_one_of_the_12_regions"),
        (8, "record", "duplicate_person"),
    }
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            table = json.dumps(
                [list(r) for r in conn.execute(text("SELECT * FROM rnp_import_rejects"))]
            )
    finally:
        engine.dispose()
    written = json.dumps(report) + table + result.output
    assert sorted(v for v in _values(records) if v in written) == []


def test_every_person_enrolled_by_import_has_an_audit_entry_and_the_import_its_own(
    cli: CliRunner, settings: Any, tmp_path: Path, audit_log: AuditLog
) -> None:
    path = tmp_path / "people.csv"
    records = list(generate(30, seed=44))
    records[5]["birth_date"] = "not a date"
    with path.open("w", encoding="utf-8", newline="") as fh:
        write_csv(iter(records), fh)
    before = audit_log.size()
    result = cli.invoke(root_app, ["rnp", "import", str(path), "--batch-size", "8"])
    assert result.exit_code == 0, result.output

    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            enrolled = [r[0] for r in conn.execute(text("SELECT idcs FROM rnp_persons"))]
    finally:
        engine.dispose()
    assert len(enrolled) == 29
    entries = audit_log.entries(EntryFilter(action="enrol"), after=before - 1, limit=1000)
    with open_register(settings) as (_register, _engine, vault):
        tags = {vault.subject_tag(idcs) for idcs in enrolled}
    assert sorted(e.entry.subject for e in entries) == sorted(tags)
    assert all(e.entry.legal_basis and e.entry.legal_basis["type"] == "law" for e in entries)
    assert all("bulk_import" in e.entry.reasons for e in entries)
    job = audit_log.entries(EntryFilter(action="rnp_import"), after=before - 1)
    assert [e.entry.outcome for e in job] == ["allow", "allow"]
    start, end = (e.entry.reasons for e in job)
    assert "stage:start" in start
    assert {"stage:end", "lines:31", "enrolled:29", "rejected:1"} <= set(end)
    # The entries hold keyed tags, never an IDCS or a value of the file.
    logged = "".join(e.canonical.decode() for e in [*entries, *job])
    assert not any(idcs in logged for idcs in enrolled)
    assert sorted(v for v in _values(records) if v in logged) == []


# SQLite only: PostgreSQL takes every worker asked for (the slow test below runs two).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_more_workers_on_sqlite_are_capped_to_one_with_a_clear_message(
    cli: CliRunner, settings: Any, tmp_path: Path
) -> None:
    path = tmp_path / "people.csv"
    _population(path, 6)
    result = cli.invoke(root_app, ["rnp", "import", str(path), "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "SQLite has one writer at a time: importing with 1 worker" in result.output
    assert _rows(settings, "rnp_persons") == 6


def _claimed_batch(engine: Any, parent: int) -> tuple[int, int, int] | None:  # type: ignore[misc]
    """(worker pid, batch, token) of a batch a worker holds claimed, not done."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT holder, batch_no, token FROM rnp_import_batches "
                 "WHERE done_at IS NULL AND holder IS NOT NULL AND expires_at > "
                 "EXTRACT(EPOCH FROM clock_timestamp()) ORDER BY batch_no")
        ).all()  # fmt: skip
    for holder, batch, token in rows:
        pid = int(holder.split(":")[1])
        if pid != parent:
            return pid, int(batch), int(token)
    return None


# PostgreSQL only: several import workers need it (SQLite has one writer).
@pytest.mark.slow
@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_sigkill_of_one_worker_mid_batch_enrols_and_audits_every_person_exactly_once(
    settings: Any, tmp_path: Path, audit_log: AuditLog
) -> None:
    settings.prepare_data_dir()
    records = list(generate(3000, seed=1212))
    # Rejects that one process reports: two invalid rows and a person given twice in a batch.
    records[10]["birth_date"] = "1990-13-45"
    records[1505]["region"] = "Atlantis"
    records[1520] = dict(records[1510])
    path = tmp_path / "people.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        write_jsonl(iter(records), fh)
    env = {**os.environ, "SIJILL_DATA_DIR": str(settings.data_dir),
           "SIJILL_DATABASE_URL": settings.database_url}  # fmt: skip
    command = [str(Path(sys.executable).with_name("sijill")), "rnp", "import", str(path),
               "--workers", "2", "--batch-size", "100", "--claim-seconds", "3"]  # fmt: skip
    before = audit_log.size()
    engine = make_engine(settings.database_url)
    try:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)  # fmt: skip
        victim = None
        deadline = time.monotonic() + 180
        while victim is None and time.monotonic() < deadline and proc.poll() is None:
            with engine.connect() as conn:
                done = conn.execute(
                    text("SELECT count(*) FROM rnp_import_batches WHERE done_at IS NOT NULL")
                ).scalar_one()
            claimed = _claimed_batch(engine, proc.pid) if done >= 3 else None
            if claimed is not None:
                # Stopped first, so that the batch it holds is read while it is surely held.
                os.kill(claimed[0], signal.SIGSTOP)
                victim = _claimed_batch(engine, proc.pid)
                if victim is None or victim[0] != claimed[0]:
                    os.kill(claimed[0], signal.SIGCONT)
                    victim = None
                    continue
                os.kill(victim[0], signal.SIGKILL)
            time.sleep(0.02)
        assert victim is not None, "no worker was caught holding a batch"
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        _pid, batch, token = victim
        with engine.connect() as conn:
            taken = conn.execute(
                text("SELECT token, done_at IS NOT NULL FROM rnp_import_batches "
                     "WHERE batch_no = :b"), {"b": batch}
            ).one()  # fmt: skip
            rows = conn.execute(
                text("SELECT count(*), count(DISTINCT idcs) FROM rnp_persons")
            ).one()
            enrolled = [r[0] for r in conn.execute(text("SELECT idcs FROM rnp_persons"))]
            pending = conn.execute(text("SELECT count(*) FROM rnp_pending_vault")).scalar_one()
            keys = conn.execute(text("SELECT count(*) FROM vault_data_keys")).scalar_one()
    finally:
        engine.dispose()
    # The killed worker's batch was taken over by the other worker (a new token) and done.
    assert taken[0] == token + 1 and taken[1]
    assert tuple(rows) == (2997, 2997) and keys == 2997 and pending == 0
    report = json.loads(path.with_name("people.jsonl.rejects.json").read_text(encoding="utf-8"))
    assert report["enrolled"] == 2997 and report["rejected"] == 3
    assert {(r["line"], r["field"], r["reason"]) for r in report["rejects"]} == {
        (11, "birth_date", "date_from_datetime_parsing"),
        (1506, "region", "is_not_one_of_the_12_regions"),
        (1521, "record", "duplicate_person"),
    }
    # One enrol entry per person enrolled, none for the killed worker's rolled-back batch.
    entries = audit_log.entries(EntryFilter(action="enrol"), after=before - 1, limit=5000)
    with open_register(settings) as (_register, _engine, vault):
        tags = sorted(vault.subject_tag(idcs) for idcs in enrolled)
    assert sorted(e.entry.subject for e in entries) == tags
