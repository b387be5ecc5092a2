"""The driver-level upsert: new keys inserted, existing keys' other columns replaced, in one
statement, on both databases."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Column, Engine, Integer, LargeBinary, MetaData, String, Table, select

from gateway.db import make_engine
from storekit.bulk import upsert_rows

metadata = MetaData()
pairs = Table(
    "upsert_pairs",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("blob", LargeBinary, nullable=False),
    Column("n", Integer, nullable=False),
)
keyless = Table("upsert_keyless", metadata, Column("name", String(32), nullable=False))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def _all(engine: Engine) -> list[tuple[str, bytes, int]]:
    with engine.connect() as conn:
        return sorted((r.name, bytes(r.blob), r.n) for r in conn.execute(select(pairs)))


def test_upsert_inserts_new_keys_and_replaces_the_other_columns_of_existing_ones(
    engine: Engine,
) -> None:
    with engine.begin() as conn:
        upsert_rows(conn, pairs, [("a", b"\x00\x01", 1), ("b", b"", 2)])
    with engine.begin() as conn:
        upsert_rows(conn, pairs, [("b", b"\xff" * 300, 20), ("ç'x", b"\x00", 3)])
        upsert_rows(conn, pairs, [])
    assert _all(engine) == [("a", b"\x00\x01", 1), ("b", b"\xff" * 300, 20), ("ç'x", b"\x00", 3)]


def test_upsert_rows_stay_in_the_callers_transaction(engine: Engine) -> None:
    with pytest.raises(RuntimeError), engine.begin() as conn:
        upsert_rows(conn, pairs, [("a", b"1", 1)])
        raise RuntimeError("rolled back")
    assert _all(engine) == []


def test_upsert_refuses_a_table_without_a_primary_key(engine: Engine) -> None:
    with engine.begin() as conn, pytest.raises(ValueError):
        upsert_rows(conn, keyless, [("a",)])
