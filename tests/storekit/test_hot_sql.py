"""The hot-path SQL runner: same answers as SQLAlchemy, on both databases, failing cleanly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError

from gateway.db import make_engine
from storekit import HotSQL, hot_sql

metadata = MetaData()
things = Table(
    "hot_things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(40), nullable=False, unique=True),
    Column("kind", String(10), nullable=False),
    Column("blob", LargeBinary, nullable=True),
)

BY_NAME = select(things.c.id, things.c.blob).where(things.c.name == bindparam("name"))
# "kind" is a literal: compiled into a bound parameter whose value comes with the statement.
RED_AFTER = (
    select(things.c.name)
    .where(things.c.kind == "red", things.c.id > bindparam("after"))
    .order_by(things.c.id)
)
ADD = insert(things).values(
    id=bindparam("id"), name=bindparam("name"), kind=bindparam("kind"), blob=bindparam("blob")
)
RENAME = update(things).where(things.c.id == bindparam("key")).values(name=bindparam("new"))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def _rows(engine: Engine) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(things.c.id, things.c.name).order_by("id"))]


def test_writes_in_a_transaction_are_read_back_like_sqlalchemy_reads_them(engine: Engine) -> None:
    hot = HotSQL(engine)
    with hot.begin() as tx:
        tx.executemany(
            ADD,
            [
                {"id": 1, "name": "a", "kind": "red", "blob": b"\x00\x01"},
                {"id": 2, "name": "b", "kind": "blue", "blob": None},
                {"id": 3, "name": "c", "kind": "red", "blob": b"\xff"},
            ],
        )
        assert tx.execute(RENAME, key=3, new="c2") == 1
    assert hot.one(BY_NAME, name="a") == (1, b"\x00\x01")
    assert hot.one(BY_NAME, name="nobody") is None
    assert hot.all(RED_AFTER, after=0) == [("a",), ("c2",)]
    assert hot.all(RED_AFTER, after=1) == [("c2",)]
    assert hot.maps(BY_NAME, name="c2") == [{"id": 3, "blob": b"\xff"}]
    assert _rows(engine) == [(1, "a"), (2, "b"), (3, "c2")]


def test_a_transaction_that_raises_leaves_nothing_behind(engine: Engine) -> None:
    hot = HotSQL(engine)
    with pytest.raises(RuntimeError), hot.begin(immediate=True) as tx:
        tx.execute(ADD, id=1, name="a", kind="red", blob=None)
        raise RuntimeError("interrupted")
    assert _rows(engine) == []
    # The pool of connections still works afterwards.
    with hot.begin() as tx:
        tx.execute(ADD, id=1, name="a", kind="red", blob=None)
    assert _rows(engine) == [(1, "a")]


def test_a_transaction_opened_with_a_read_holds_its_first_row(engine: Engine) -> None:
    hot = HotSQL(engine, lock_timeout_s=5)
    with hot.begin() as tx:
        tx.execute(ADD, id=1, name="a", kind="red", blob=b"\x07")
    first = select(things.c.id, things.c.blob).order_by(things.c.id).with_for_update()
    with hot.begin(immediate=True, opening=first) as tx:
        assert tx.opening_row == (1, b"\x07")
        tx.execute(RENAME, key=1, new="a2")
    none = select(things.c.id).where(things.c.kind == "green")
    with hot.begin(opening=none) as tx:
        assert tx.opening_row is None
    assert _rows(engine) == [(1, "a2")]


def test_a_commit_sent_in_a_pipeline_commits_with_the_writes_or_not_at_all(
    engine: Engine,
) -> None:
    hot = HotSQL(engine)
    with hot.begin() as tx:
        with tx.pipeline():
            tx.send(ADD, id=1, name="a", kind="red", blob=None)
            tx.send(ADD, id=2, name="b", kind="red", blob=None)
            tx.commit()
        assert tx.committed
    assert _rows(engine) == [(1, "a"), (2, "b")]
    # The second insert fails: the pipeline skips the COMMIT, so the first is rolled back too.
    with pytest.raises(IntegrityError), hot.begin() as tx, tx.pipeline():
        tx.send(ADD, id=3, name="c", kind="red", blob=None)
        tx.send(ADD, id=4, name="a", kind="red", blob=None)
        tx.commit()
    assert _rows(engine) == [(1, "a"), (2, "b")]
    with hot.begin() as tx:
        tx.execute(ADD, id=3, name="c", kind="red", blob=None)
    assert _rows(engine) == [(1, "a"), (2, "b"), (3, "c")]


def test_driver_errors_surface_as_sqlalchemy_errors_without_the_parameters(
    engine: Engine,
) -> None:
    hot = HotSQL(engine)
    with hot.begin() as tx:
        tx.execute(ADD, id=1, name="secret-value-1", kind="red", blob=None)
    with pytest.raises(IntegrityError) as caught, hot.begin() as tx:
        tx.execute(ADD, id=2, name="secret-value-1", kind="red", blob=None)
    assert "[parameters:" not in str(caught.value)
    assert caught.value.params is None
    assert _rows(engine) == [(1, "secret-value-1")]


def test_a_missing_parameter_is_refused_before_the_database_sees_the_statement(
    engine: Engine,
) -> None:
    with pytest.raises(TypeError, match="name"):
        HotSQL(engine).one(BY_NAME)


def test_expanding_in_lists_are_refused(engine: Engine) -> None:
    stmt = select(things.c.id).where(things.c.name.in_(bindparam("names", expanding=True)))
    with pytest.raises(ValueError, match="IN"):
        HotSQL(engine).prepare(stmt)


def test_one_runner_per_engine_whose_connections_close_with_the_engine_and_reopen(
    engine: Engine,
) -> None:
    hot = hot_sql(engine)
    assert hot_sql(engine) is hot
    assert hot.one(BY_NAME, name="x") is None
    assert hot._idle.qsize() == 1
    engine.dispose()
    assert hot._idle.qsize() == 0
    assert hot.one(BY_NAME, name="x") is None  # a disposed engine is used again, as SQLAlchemy's


def test_a_read_on_an_unreachable_database_raises_a_dbapi_error(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("a file where a directory should be")
    engine = make_engine(f"sqlite:///{tmp_path / 'not-a-dir' / 'db.sqlite'}")
    with pytest.raises(DBAPIError):
        HotSQL(engine).one(BY_NAME, name="x")


def test_a_batch_of_reads_answers_each_as_its_own_read_would(engine: Engine) -> None:
    hot = HotSQL(engine)
    with hot.begin() as tx:
        tx.execute(ADD, id=1, name="a", kind="red", blob=b"\x01")
        tx.execute(ADD, id=2, name="b", kind="red", blob=None)
    answers = hot.batch(
        [(BY_NAME, {"name": "b"}), (RED_AFTER, {"after": 0}), (BY_NAME, {"name": "z"})]
    )
    assert answers == [
        hot.maps(BY_NAME, name="b"),
        hot.maps(RED_AFTER, after=0),
        [],
    ]
    assert answers[1] == [{"name": "a"}, {"name": "b"}]


def test_statements_built_per_call_do_not_grow_the_compiled_cache_without_bound(
    engine: Engine,
) -> None:
    from storekit import MAX_COMPILED

    hot = HotSQL(engine)
    for n in range(MAX_COMPILED + 50):
        stmt = select(things.c.id).where(things.c.id == n)  # a new statement each time
        assert hot.one(stmt) is None
    assert len(hot._compiled) <= MAX_COMPILED
    assert hot.one(BY_NAME, name="a") is None  # still answers after the cache was cleared
