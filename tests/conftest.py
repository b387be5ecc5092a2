"""Shared fixtures: every database test runs on SQLite and on PostgreSQL, each isolated.

PostgreSQL runs when ``SIJILL_TEST_DATABASE_URL`` names a server; each test gets a schema of
its own, dropped afterwards. With ``SIJILL_REQUIRE_POSTGRES=1`` a missing or unreachable
server fails the run instead of skipping those tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_URL = os.environ.get("SIJILL_TEST_DATABASE_URL")
REQUIRE_PG = os.environ.get("SIJILL_REQUIRE_POSTGRES", "") in {"1", "true", "yes"}


def pytest_configure(config: pytest.Config) -> None:
    if not REQUIRE_PG:
        return
    if not PG_URL:
        raise pytest.UsageError("SIJILL_REQUIRE_POSTGRES=1 but SIJILL_TEST_DATABASE_URL is unset")
    try:
        engine = create_engine(PG_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        raise pytest.UsageError(
            f"SIJILL_REQUIRE_POSTGRES=1 but PostgreSQL is unreachable: {type(exc).__name__}"
        ) from None


def with_search_path(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    if not PG_URL:
        pytest.skip("PostgreSQL not configured (set SIJILL_TEST_DATABASE_URL)")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield with_search_path(PG_URL, schema)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database: a SQLite file, or a PostgreSQL schema of this test's own."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sijill.db'}"
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture
def database_urls(database_url: str) -> dict[str, str]:
    return {"main": database_url, "vault": database_url, "audit": database_url}


@pytest.fixture
def migrated_urls(database_urls: dict[str, str]) -> dict[str, str]:
    from gateway import db

    db.upgrade(database_urls)
    return database_urls


@pytest.fixture
def settings(tmp_path: Path, migrated_urls: dict[str, str]):  # type: ignore[no-untyped-def]
    from gateway.settings import load_settings

    return load_settings(
        data_dir=tmp_path / "data", database_url=migrated_urls["main"], host="127.0.0.1", port=8000
    )


@pytest.fixture
def app(settings):  # type: ignore[no-untyped-def]
    from gateway.app import create_app

    settings.prepare_data_dir()
    application = create_app(settings)
    yield application
    application.state.services.close()


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def backend_of(url: str) -> str:
    return make_url(url).get_backend_name()
