"""The log's origin is fixed when the log is initialised: the same data directory served on
another port verifies, and ``sijill audit verify`` run from anywhere reads, never creates."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from gateway.app import create_app
from gateway.cli import app as root_app
from gateway.cli import register
from gateway.db import make_engine
from gateway.keys import build_audit_log
from gateway.settings import SettingsError, load_settings
from tests.audit.conftest import make_entry


def _files(root: Path) -> set[str]:
    # SQLite's own -wal/-shm files come and go with any connection: not ours to count.
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if not p.name.endswith(("-wal", "-shm", "-journal"))
    }


def _cli() -> CliRunner:
    if not any(g.name == "audit" for g in root_app.registered_groups):
        register.all(root_app)
    return CliRunner()


def test_the_same_data_directory_served_on_two_ports_verifies_from_anywhere(
    tmp_path: Path, migrated_urls: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    for n, port in enumerate((8000, 9123)):
        settings = load_settings(data_dir=data, database_url=migrated_urls["main"], port=port)
        settings.prepare_data_dir()
        app = create_app(settings)
        with TestClient(app) as client:
            app.state.services.audit.append(make_entry(n))
            note = client.get("/v1/audit/checkpoint").text
        assert note.startswith("127.0.0.1/audit\n")  # the host, not the port
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("SIJILL_DATABASE_URL", migrated_urls["main"])
    monkeypatch.setenv("SIJILL_PORT", "7777")  # a third port: still the same log
    before = _files(tmp_path)
    result = _cli().invoke(root_app, ["audit", "verify", "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output
    assert _files(tmp_path) == before  # nothing created, here or in the data directory


def test_verify_on_a_missing_data_directory_says_so_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SIJILL_DATABASE_URL", raising=False)
    result = _cli().invoke(root_app, ["audit", "verify", "--data-dir", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "no audit database at" in result.output
    assert list(tmp_path.iterdir()) == []


def test_an_origin_other_than_the_log_was_initialised_with_is_a_start_error(
    settings, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from gateway.services import check_keys

    settings.prepare_data_dir()
    app = create_app(settings)
    with TestClient(app):
        pass  # the log records its origin
    renamed = settings.model_copy(update={"audit_origin": "elsewhere.example/audit"})
    with pytest.raises(SettingsError, match=r"initialised as '127\.0\.0\.1/audit'"):
        check_keys(renamed)


def test_a_bound_log_takes_its_very_first_entries_inside_the_callers_transaction(
    tmp_path: Path, migrated_urls: dict[str, str]
) -> None:
    # A rescoring on a log nobody has opened yet: on SQLite, recording the log's origin on a
    # connection of its own would wait for the caller's write lock.
    settings = load_settings(data_dir=tmp_path / "data", database_url=migrated_urls["main"])
    settings.prepare_data_dir()
    engine = make_engine(migrated_urls["main"])
    log = build_audit_log(settings, engine, engine)
    try:
        log.bind()
        with engine.begin() as conn:
            # The caller's own writes come first (on SQLite they take the database's write lock).
            conn.execute(text("UPDATE leases SET holder = holder WHERE name = 'none'"))
            log.append_many([make_entry(0), make_entry(1)], transaction=conn)
        assert log.size() == 2
        assert log.origin == "127.0.0.1/audit"
    finally:
        log.close()
        engine.dispose()
