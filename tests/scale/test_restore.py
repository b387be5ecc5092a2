"""Restore drills (docs/deployment.md, "Backups and restore drills"), on SQLite and PostgreSQL.

A backup taken with the database's own tools (SQLite's online backup; ``pg_dump`` and
``pg_restore`` into a new database) and restored verifies: ``sijill audit verify`` finds the
restored log consistent with every checkpoint and with what the signer remembers, and a gateway
started on it with the same keys serves the person's record. A backup older than the newest
signed checkpoint is a rollback of the log, and the same command says so.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from gateway.cli import app as root_app
from gateway.cli import register
from tests.conftest import PG_URL, with_search_path
from tests.gateway.conftest import World
from tests.gateway.test_agency_api import pseudonym, query


@pytest.fixture
def restored_databases() -> Iterator[list[str]]:
    """Names of the PostgreSQL databases a test restored into; dropped afterwards."""
    names: list[str] = []
    yield names
    if names and PG_URL:
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _libpq(url: str) -> tuple[str, str]:
    """The libpq connection string of a SQLAlchemy URL, and the schema its search_path names."""
    parts = urlsplit(url.replace("postgresql+psycopg://", "postgresql://", 1))
    options = unquote(parse_qs(parts.query).get("options", [""])[0])
    schema = options.removeprefix("-csearch_path=")
    return parts._replace(query="").geturl(), schema


def backup_and_restore(url: str, into: Path, restored: list[str]) -> str:
    """Back the database up with its own tools and restore it elsewhere; the restored URL."""
    if url.startswith("sqlite"):
        source = sqlite3.connect(url.removeprefix("sqlite:///"))
        copy = into / "restored.db"
        target = sqlite3.connect(copy)
        source.backup(target)  # consistent while the gateway keeps writing
        target.close()
        source.close()
        return f"sqlite:///{copy}"
    dsn, schema = _libpq(url)
    dump = into / "backup.dump"
    subprocess.run(
        ["pg_dump", "--format=custom", f"--schema={schema}", f"--file={dump}", dsn], check=True
    )
    name = f"restore_{uuid.uuid4().hex[:12]}"
    admin = create_engine(str(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    restored.append(name)
    base = str(PG_URL).rsplit("/", 1)[0] + f"/{name}"
    target_dsn, _ = _libpq(base)
    subprocess.run(["pg_restore", "--no-owner", f"--dbname={target_dsn}", str(dump)], check=True)
    return with_search_path(base, schema)


def _verify(data_dir: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> dict:  # type: ignore[type-arg]
    monkeypatch.setenv("SIJILL_DATA_DIR", str(data_dir))
    monkeypatch.setenv("SIJILL_DATABASE_URL", database_url)
    if not any(g.name == "audit" for g in root_app.registered_groups):
        register.all(root_app)
    result = CliRunner().invoke(
        root_app, ["audit", "verify", "--database-url", database_url, "--json"]
    )
    report: dict = json.loads(result.stdout)  # type: ignore[type-arg]
    assert (result.exit_code == 0) == report["ok"], result.output
    return report


def test_a_restored_backup_verifies_and_serves_with_the_same_keys(
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    restored_databases: list[str],
) -> None:
    social = pseudonym(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    query(world, "cnss", social, ["given_name_lat"], "amo_tadamon_enrolment")
    signed = world.services.audit.issue_checkpoint()
    settings = world.services.settings
    live_url = str(settings.database_url)

    restored_url = backup_and_restore(live_url, tmp_path, restored_databases)

    report = _verify(settings.data_dir, restored_url, monkeypatch)
    assert report["ok"] is True
    assert report["tree_size"] == signed.tree_size
    assert report["root_hash"] == signed.root_hash.hex()

    # A gateway on the restored databases, with the same data directory's keys, reads the
    # person's record: the vault's data keys came back with the rows they protect.
    from gateway.app import create_app
    from gateway.settings import load_settings

    restored_settings = load_settings(
        data_dir=settings.data_dir, database_url=restored_url, issuer=settings.issuer
    )
    app = create_app(restored_settings)
    try:
        with TestClient(app, base_url=str(settings.issuer)) as api:
            token = world.citizen_token("fatima")
            mine = api.get("/v1/me/data", headers={"Authorization": f"Bearer {token}"})
        assert mine.status_code == 200, mine.text
        assert mine.json()["person"]["given_name_lat"] == "Fatima"
    finally:
        app.state.services.close()


def test_a_backup_older_than_the_newest_signed_checkpoint_is_refused_as_a_rollback(
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    restored_databases: list[str],
) -> None:
    social = pseudonym(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    world.services.audit.issue_checkpoint()
    settings = world.services.settings
    restored_url = backup_and_restore(str(settings.database_url), tmp_path, restored_databases)
    # The live log grows and is signed after the backup was taken.
    query(world, "cnss", social, ["given_name_lat"], "amo_tadamon_enrolment")
    newer = world.services.audit.issue_checkpoint()

    report = _verify(settings.data_dir, restored_url, monkeypatch)

    assert report["ok"] is False
    assert report["tree_size"] < newer.tree_size
    assert "signer" in report["problem"]
