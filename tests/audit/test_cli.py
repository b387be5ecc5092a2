"""``sijill audit``: checkpoint on demand, export, offline verify (exit 1 names the index)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app as root_app
from gateway.cli import register
from tests.audit.conftest import make_entry


@pytest.fixture
def cli(settings, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from gateway.db import make_engine
    from gateway.keys import build_audit_log

    monkeypatch.setenv("SIJILL_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SIJILL_DATABASE_URL", settings.database_url)
    settings.prepare_data_dir()
    engine = make_engine(settings.audit_database_url)
    log = build_audit_log(settings, engine)
    for n in range(25):
        log.append(make_entry(n))
    log.close()
    engine.dispose()
    if not any(g.name == "audit" for g in root_app.registered_groups):
        register.all(root_app)
    return CliRunner()


def test_checkpoint_export_and_verify_round_trip(cli: CliRunner, tmp_path: Path) -> None:
    note = cli.invoke(root_app, ["audit", "checkpoint"])
    assert note.exit_code == 0, note.output
    assert note.output.split("\n")[1] == "25"
    (tmp_path / "trusted.note").write_text(note.output)
    export = tmp_path / "log.jsonl"
    assert cli.invoke(root_app, ["audit", "export", str(export)]).exit_code == 0
    ok = cli.invoke(
        root_app,
        [
            "audit",
            "verify",
            "--export",
            str(export),
            "--trusted-checkpoint",
            str(tmp_path / "trusted.note"),
            "--json",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["ok"] is True
    assert cli.invoke(root_app, ["audit", "verify"]).exit_code == 0  # straight from the database


def test_verify_fails_and_names_the_first_altered_index(cli: CliRunner, tmp_path: Path) -> None:
    assert cli.invoke(root_app, ["audit", "checkpoint"]).exit_code == 0
    export = tmp_path / "log.jsonl"
    assert cli.invoke(root_app, ["audit", "export", str(export)]).exit_code == 0
    lines = export.read_text().splitlines()
    row = json.loads(lines[1 + 9])  # the entry at index 9
    row["entry"] = row["entry"].replace('"outcome":"allow"', '"outcome":"deny"')
    lines[1 + 9] = json.dumps(row)
    export.write_text("\n".join(lines) + "\n")
    bad = cli.invoke(root_app, ["audit", "verify", "--export", str(export), "--json"])
    assert bad.exit_code == 1
    assert json.loads(bad.stdout)["first_bad_index"] == 9
