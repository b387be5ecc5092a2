"""The SQL store behind the log's seam: driver failures become the audit's own error, and a
server that dropped the store's connections costs nothing but a reconnect."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import closing

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from audit import AuditLog, EntryFilter, NoteSigner, SqlStorage, StoreUnavailable
from gateway.db import make_engine
from tests.audit.conftest import ORIGIN, make_entry


def _unreachable(engine: Engine) -> Engine:
    if engine.dialect.name == "sqlite":
        return make_engine("sqlite:////nonexistent-dir/for/sure/audit.db")
    return make_engine(engine.url.set(port=1).render_as_string(hide_password=False))


def test_every_store_operation_on_a_dead_database_raises_store_unavailable(
    audit_engine: Engine,
) -> None:
    dead = _unreachable(audit_engine)
    storage = SqlStorage(dead)
    try:
        operations = [
            storage.head,
            lambda: storage.read_nodes([(0, 0)]),
            storage.meta,
            storage.checkpoints,
            lambda: storage.find(EntryFilter(agency="a")),
            lambda: storage.find(EntryFilter(subject="s")),
            lambda: list(storage.entries(0, 1)),
            lambda: storage.latest_checkpoint(),
        ]
        for operation in operations:
            with pytest.raises(StoreUnavailable) as caught:
                operation()
            assert isinstance(caught.value.__cause__, DBAPIError)
        with pytest.raises(StoreUnavailable), storage.sequencer():
            raise AssertionError("the exclusive section opened on a dead database")
    finally:
        storage.close()
        dead.dispose()


@pytest.fixture
def pg_log(pg_schema_url: str, signer: NoteSigner) -> Iterator[tuple[AuditLog, Engine]]:
    from alembic import command

    from gateway import db

    command.upgrade(db.alembic_config("audit", pg_schema_url), "heads")
    engine = make_engine(pg_schema_url)
    log = AuditLog.for_engine(engine, signer, ORIGIN, checkpoint_every_seconds=3600)
    yield log, engine
    log.close()
    engine.dispose()


@pytest.mark.postgres
def test_appends_and_proofs_go_on_after_the_server_terminated_the_stores_connections(
    pg_log: tuple[AuditLog, Engine],
) -> None:
    log, audit_engine = pg_log
    for i in range(6):
        log.append(make_entry(i))
    log.inclusion_proof(2)
    assert isinstance(log.storage, SqlStorage)
    kept = list(log.storage._hot._idle.queue)
    assert kept, "the store keeps connections between appends"
    with audit_engine.connect() as conn:
        for connection in kept:
            pid = connection.driver.info.backend_pid
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    time.sleep(0.2)
    assert log.append(make_entry(6)).index == 6
    assert log.inclusion_proof(5, 7).tree_size == 7
    assert log.size() == 7


def test_a_closed_store_opens_new_connections_when_used_again(audit_engine: Engine) -> None:
    storage = SqlStorage(audit_engine)
    with closing(storage):
        assert storage.head()[0] == 0
    assert storage.head()[0] == 0
    storage.close()
