"""Set-valued lookups and driver-level bulk inserts, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    select,
)
from sqlalchemy.exc import IntegrityError

from gateway.db import make_engine
from storekit import HotSQL
from storekit.bulk import among, bound, insert_columns, insert_rows

metadata = MetaData()
rows_table = Table(
    "bulk_rows",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tag", String(16), nullable=False, unique=True),
    Column("at", DateTime(timezone=True), nullable=False),
)
WHEN = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def _add(engine: Engine, rows: list[tuple[int, str]]) -> None:
    with engine.begin() as conn:
        at = bound(conn, rows_table.c.at, WHEN)
        insert_rows(conn, rows_table, [(i, tag, at) for i, tag in rows])


def test_rows_inserted_at_the_driver_read_back_through_sqlalchemy(engine: Engine) -> None:
    _add(engine, [(i, f"t{i}") for i in range(300)])
    with engine.connect() as conn:
        got = conn.execute(
            select(rows_table).where(among(conn, rows_table.c.tag, ["t3", "t250", "nope"]))
        ).all()
    assert sorted((r.id, r.tag) for r in got) == [(3, "t3"), (250, "t250")]
    assert {r.at.replace(tzinfo=UTC) for r in got} == {WHEN}


def test_among_matches_values_with_quotes_and_non_ascii_exactly_and_none_for_an_empty_list(
    engine: Engine,
) -> None:
    tags = ['a"b', "c'd", "e\\f", "عربي", "[1]", "x,y"]
    _add(engine, [(i, tag) for i, tag in enumerate(tags)] + [(99, "ab")])
    with engine.connect() as conn:

        def found(values: list[str]) -> list[str]:
            query = select(rows_table.c.tag).where(among(conn, rows_table.c.tag, values))
            return sorted(conn.execute(query).scalars())

        assert found(tags) == sorted(tags)
        assert found(['a"b', "nope"]) == ['a"b']
        assert found([]) == []


def test_among_has_one_query_text_whatever_the_number_of_values(engine: Engine) -> None:
    with engine.connect() as conn:

        def text(n: int) -> str:
            query = select(rows_table.c.id).where(
                among(conn, rows_table.c.tag, [f"t{i}" for i in range(n)])
            )
            # As the driver receives it (an expanding IN list would be rendered out here).
            compiled = query.compile(
                dialect=conn.dialect, compile_kwargs={"render_postcompile": True}
            )
            return str(compiled)

        assert text(1) == text(2) == text(400)


def test_a_unique_conflict_is_sqlalchemys_integrity_error_and_writes_nothing(
    engine: Engine,
) -> None:
    _add(engine, [(1, "secret-tag")])
    with pytest.raises(IntegrityError) as caught:
        _add(engine, [(2, "fresh"), (3, "secret-tag")])
    assert "[parameters:" not in str(caught.value)
    with engine.connect() as conn:
        assert conn.execute(select(rows_table.c.id)).scalars().all() == [1]


columns_table = Table(
    "bulk_columns",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("hash", LargeBinary(32), nullable=False),
    Column("note", String(16)),
    Column("body", Text, nullable=False),
)


def test_rows_inserted_as_columns_in_a_pipeline_read_back_exactly(engine: Engine) -> None:
    hot = HotSQL(engine)
    rows = [(i, bytes([i]) * 32, None if i % 2 else f"n{i}", 'عربي "q"') for i in range(250)]
    with hot.begin() as tx, tx.pipeline():
        insert_columns(tx, columns_table, rows)
        insert_columns(tx, columns_table, [])
    with engine.connect() as conn:
        got = conn.execute(select(columns_table).order_by(columns_table.c.id)).all()
    assert [tuple(r) for r in got] == rows


def test_a_column_insert_that_conflicts_writes_nothing_and_hides_the_values(
    engine: Engine,
) -> None:
    hot = HotSQL(engine)
    with hot.begin() as tx:
        insert_columns(tx, columns_table, [(1, b"\x01" * 32, None, "secret-body")])
    with pytest.raises(IntegrityError) as caught, hot.begin() as tx, tx.pipeline():
        insert_columns(
            tx, columns_table, [(2, b"\x02" * 32, None, "x"), (1, b"\x01" * 32, None, "y")]
        )
    assert "secret-body" not in str(caught.value) and "[parameters:" not in str(caught.value)
    with engine.connect() as conn:
        assert conn.execute(select(columns_table.c.id)).scalars().all() == [1]
