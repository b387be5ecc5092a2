"""``sijill rnp import`` cannot leak and does not forget (issue 21): a file it cannot read as
persons (no header, a wrong header, nothing at all) is refused whole, naming columns, never a
value, with nothing written; what it enrols is on the audit log, person by person, like
enrolment over HTTP, and the import itself (start, end, counts) is too. SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import logging
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
from identity.synth import CSV_COLUMNS, generate, write_csv


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
