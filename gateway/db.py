"""Database engines for the three stores, and their Alembic migrations.

The stores (``main``: registers, clients, consents; ``vault``: keys and ciphertexts;
``audit``: the log) may be one database or three. Each has its own migration history
and version table, so they can be separated without rewriting history.
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path

from alembic import command
from alembic.config import Config
from pydantic import TypeAdapter
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from gateway.settings import Settings

MIGRATIONS = Path(__file__).with_name("migrations")
STORES = ("main", "vault", "audit")


# A worker serves requests from a thread pool of 40 (anyio's default): keep as many
# connections open. Overflow connections are closed on return, and opening one costs a
# PostgreSQL backend start (or, on SQLite, the WAL pragmas) on every request that needs it.
POOL_SIZE = 40


def prepared_statements_setting() -> bool:
    """``SIJILL_DB_PREPARED_STATEMENTS`` (:attr:`Settings.db_prepared_statements`), read where
    every engine is built, so the command line, the migrations and the server all follow it."""
    raw = os.environ.get("SIJILL_DB_PREPARED_STATEMENTS")
    if raw is None:
        return bool(Settings.model_fields["db_prepared_statements"].default)
    return TypeAdapter(bool).validate_python(raw)


def make_engine(
    url: str, *, pool_size: int = POOL_SIZE, prepared_statements: bool | None = None
) -> Engine:
    """One engine per URL; SQLite gets WAL, foreign keys and a busy timeout. On PostgreSQL,
    ``prepared_statements`` (default: the setting) lets psycopg prepare statements on the
    server; storekit's kept connections are opened through this engine and follow it too."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            # Best effort: an unreachable path shows up as a failed connection (see /readyz).
            with suppress(OSError):
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            pool_size=pool_size,
            max_overflow=10,
            # The connection returned last is handed out next: each SQLite connection has its
            # own page cache, which stays warm only on a connection used again before another
            # one writes (docs/operations.md, "SQLite page caches").
            pool_use_lifo=True,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # Python's sqlite3 opens transactions lazily; take control so BEGIN IMMEDIATE works.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            # Up to 32 MiB of page cache a connection (SQLite's default is 2 MiB), filled only
            # as pages are read: a rescoring batch's declarations and index pages fit, and are
            # read again from memory.
            cur.execute("PRAGMA cache_size=-32768")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):  # type: ignore[no-untyped-def]
            # `conn.execution_options(sqlite_begin="IMMEDIATE")` takes the write lock up front
            # (the audit log's sequencer needs it: a deferred reader that later writes can fail
            # with SQLITE_BUSY_SNAPSHOT, which no busy timeout waits out).
            mode = conn.get_execution_options().get("sqlite_begin", "")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN")

        return engine
    # No pre-ping: it would add a round trip to every checkout (a dozen per request);
    # connections are recycled instead, and a dead one fails its request, which fails closed.
    if prepared_statements is None:
        prepared_statements = prepared_statements_setting()
    # psycopg's prepare_threshold: None never prepares on the server.
    connect_args = {} if prepared_statements else {"prepare_threshold": None}
    return create_engine(
        url, pool_size=pool_size, max_overflow=10, pool_recycle=1800, connect_args=connect_args
    )


def alembic_config(store: str, url: str) -> Config:
    if store not in STORES:
        raise ValueError(f"unknown store {store!r}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", str(MIGRATIONS / "versions" / store))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["store"] = store
    return cfg


def upgrade(urls: dict[str, str], revision: str = "heads") -> None:
    """Bring every store to the newest schema (idempotent)."""
    for store in STORES:
        upgrade_store(store, urls[store], revision)


def upgrade_store(store: str, url: str, revision: str = "heads") -> None:
    command.upgrade(alembic_config(store, url), revision)


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
