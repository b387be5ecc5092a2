"""The hot path's kept connections keep the pool's promises: recycled when old, replaced when
the server dropped them, prepared statements only where the deployment allows them."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, func, select, text

from gateway.db import make_engine
from storekit import HotSQL

BACKEND_PID = select(func.pg_backend_pid())
ONE = select(func.count()).select_from(text("(SELECT 1) AS one"))


@pytest.fixture
def pg_url(pg_schema_url: str) -> str:
    return pg_schema_url


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


def _terminate(engine: Engine, *pids: int) -> None:
    with engine.connect() as conn:
        for pid in pids:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    deadline = time.monotonic() + 5
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            alive = conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)"),
                {"pids": list(pids)},
            ).scalar_one()
            if not alive:
                return
            time.sleep(0.05)
    raise AssertionError("the backends outlived pg_terminate_backend")


@pytest.mark.postgres
def test_a_read_after_the_server_killed_every_kept_connection_reconnects_and_answers(
    pg_engine: Engine,
) -> None:
    hot = HotSQL(pg_engine)
    # Two connections kept idle: one used inside the other's transaction.
    with hot.begin() as outer, hot.begin() as inner:
        pids = {outer.one(BACKEND_PID)[0], inner.one(BACKEND_PID)[0]}  # type: ignore[index]
    assert len(pids) == 2 and hot._idle.qsize() == 2
    _terminate(pg_engine, *pids)
    row = hot.one(BACKEND_PID)
    assert row is not None and row[0] not in pids
    # The other dead connection was dropped too, not handed to the next read.
    assert hot.one(BACKEND_PID)[0] not in pids  # type: ignore[index]


@pytest.mark.postgres
def test_a_transaction_begun_after_the_server_killed_its_connection_runs_on_a_new_one(
    pg_engine: Engine,
) -> None:
    hot = HotSQL(pg_engine)
    pid = hot.one(BACKEND_PID)[0]  # type: ignore[index]
    _terminate(pg_engine, pid)
    with hot.begin() as tx:
        row = tx.one(BACKEND_PID)
    assert row is not None and row[0] != pid


@pytest.mark.postgres
def test_a_kept_connection_older_than_the_pools_recycle_age_is_replaced(pg_url: str) -> None:
    engine = create_engine(pg_url, pool_recycle=1)
    try:
        hot = HotSQL(engine)
        first = hot.one(BACKEND_PID)[0]  # type: ignore[index]
        assert hot.one(BACKEND_PID)[0] == first  # type: ignore[index]  # kept while young
        time.sleep(1.2)
        assert hot.one(BACKEND_PID)[0] != first  # type: ignore[index]
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_with_pre_ping_a_dead_kept_connection_is_replaced_before_a_write_uses_it(
    pg_url: str,
) -> None:
    engine = create_engine(pg_url, pool_pre_ping=True)
    try:
        hot = HotSQL(engine)
        pid = hot.one(BACKEND_PID)[0]  # type: ignore[index]
        _terminate(engine, pid)
        with hot.begin() as tx:
            assert tx.one(BACKEND_PID)[0] != pid  # type: ignore[index]
    finally:
        engine.dispose()


def _prepared_in_session(hot: HotSQL) -> int:
    with hot.begin() as tx:
        for _ in range(10):  # psycopg prepares a statement from its fifth run by default
            tx.one(ONE)
        row = tx.one(select(func.count()).select_from(text("pg_prepared_statements")))
    assert row is not None
    return int(row[0])


@pytest.mark.postgres
@pytest.mark.parametrize("prepared", [True, False])
def test_server_side_prepared_statements_follow_the_engine_setting(
    pg_url: str, prepared: bool
) -> None:
    engine = make_engine(pg_url, prepared_statements=prepared)
    try:
        hot = HotSQL(engine)
        assert (_prepared_in_session(hot) > 0) is prepared
        # SQLAlchemy's own connections on that engine follow it too.
        with engine.connect() as conn:
            for _ in range(10):
                conn.execute(ONE)
            count = conn.execute(
                select(func.count()).select_from(text("pg_prepared_statements"))
            ).scalar_one()
        assert (count > 0) is prepared
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_sijill_db_prepared_statements_false_turns_them_off_for_every_engine_built(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.settings import Settings

    monkeypatch.setenv("SIJILL_DB_PREPARED_STATEMENTS", "false")
    assert Settings().db_prepared_statements is False
    engine = make_engine(pg_url)
    try:
        assert _prepared_in_session(HotSQL(engine)) == 0
    finally:
        engine.dispose()
