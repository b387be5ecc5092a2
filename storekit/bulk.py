"""Set-valued lookups and bulk inserts, written once for both databases.

Bulk enrolment and national rescoring move hundreds of rows per statement. Two habits of the
general path cost more there than the database's own work: ``IN`` lists (a new query text per
list length, hundreds of parameters for the driver to bind and the server to plan) and
SQLAlchemy's per-row parameter processing on inserts. Inserts inside a hot-path transaction
(:func:`insert_columns`) send a whole batch as one statement, in a pipeline with the rest.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import orjson
from sqlalchemy import (
    ARRAY,
    Column,
    ColumnElement,
    Connection,
    String,
    Table,
    any_,
    bindparam,
    func,
    insert,
    select,
)
from sqlalchemy import exc as sa_exc

from storekit.hot import Transaction

__all__ = ["CHUNK", "among", "bound", "chunks", "insert_columns", "insert_rows", "upsert_rows"]

# Values per set-valued lookup: far below SQLite's and PostgreSQL's parameter limits.
CHUNK = 500


def among(conn: Connection, column: Column[Any], values: Sequence[str]) -> ColumnElement[bool]:
    """``column`` is one of ``values``, with one parameter whatever their count, hence one query
    text that SQLAlchemy compiles once and the driver prepares once: ``column = ANY(array)`` on
    PostgreSQL, ``column IN (SELECT value FROM json_each(?))`` on SQLite (an index search per
    value, as with an ``IN`` list, without rendering and binding hundreds of parameters)."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    if conn.dialect.name == "sqlite":
        listed = func.json_each(bindparam(None, orjson.dumps(list(values)).decode(), String()))
        return column.in_(select(listed.table_valued("value").c.value))
    return column.in_(values)


def chunks(items: Sequence[str], size: int = CHUNK) -> Iterator[Sequence[str]]:
    """``items`` in slices of at most ``size``, for :func:`among` lookups."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def bound(conn: Connection, column: Column[Any], value: object) -> object:
    """``value`` as SQLAlchemy would bind it to ``column`` (SQLite's datetime text, say), for
    rows written by :func:`insert_rows`."""
    process = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return value if process is None else process(value)


def insert_rows(conn: Connection, table: Table, rows: Sequence[tuple[object, ...]]) -> None:
    """INSERT ``rows`` (values in ``table``'s column order, bound as by :func:`bound`) inside
    ``conn``'s transaction, at the driver: COPY on PostgreSQL, sqlite3's ``executemany`` (a
    loop in C) on SQLite. Driver errors surface as SQLAlchemy's (``IntegrityError`` when a
    concurrent writer won a unique key, ``OperationalError`` when the server is gone), without
    the rows' values."""
    if not rows:
        return
    # Table and column names come from the caller's Table, never from input.
    names = [c.name for c in table.columns]
    columns = ", ".join(names)
    raw: Any = conn.connection.dbapi_connection
    dbapi_error = conn.dialect.loaded_dbapi.Error
    if conn.dialect.name == "postgresql":
        statement = f"COPY {table.name} ({columns}) FROM STDIN"
    elif conn.dialect.name == "sqlite":
        marks = ", ".join("?" * len(names))
        statement = f"INSERT INTO {table.name} ({columns}) VALUES ({marks})"  # noqa: S608
    else:
        conn.execute(insert(table), [dict(zip(names, row, strict=True)) for row in rows])
        return
    try:
        if conn.dialect.name == "postgresql":
            with raw.cursor() as cur, cur.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            raw.executemany(statement, rows)  # inside conn's transaction: the same connection
    except dbapi_error as exc:
        raise sa_exc.DBAPIError.instance(
            statement, None, exc, dbapi_error, hide_parameters=True, dialect=conn.dialect
        ) from exc


def _array_type(column: Column[Any], dialect: Any) -> str:
    """The PostgreSQL array element type ``column``'s values travel as: text for strings
    (psycopg sends a list of str as text[], which the column's own type then takes), else the
    column's type without its length limit (the table enforces it; the array only carries)."""
    if isinstance(column.type, String):
        return "text"
    name: str = column.type.compile(dialect=dialect)
    return name.split("(")[0]


def upsert_rows(conn: Connection, table: Table, rows: Sequence[tuple[object, ...]]) -> None:
    """INSERT ``rows`` (values in ``table``'s column order) or, where a row with the same
    primary key exists, replace its other columns, inside ``conn``'s transaction: one statement
    for all the rows, handed to the driver as they are, with none of SQLAlchemy's per-row
    parameter processing. SQLite: ``INSERT … ON CONFLICT DO UPDATE`` through sqlite3's
    ``executemany`` (a loop in C). PostgreSQL: one array a column, sent in binary (no hex text
    of a bytea value), which ``unnest`` turns back into rows. Values are bound as they are
    (see :func:`bound` for a column type whose values need processing first)."""
    if not rows:
        return
    # Table and column names come from the caller's Table, never from input.
    names = [c.name for c in table.columns]
    key = [c.name for c in table.primary_key.columns]
    rest = [name for name in names if name not in key]
    if not key or not rest:
        raise ValueError("upsert_rows needs a table with a primary key and another column")
    columns = ", ".join(names)
    conflict = ", ".join(key)
    if conn.dialect.name == "postgresql":
        arrays = ", ".join(
            f"%(c{i})b::{_array_type(c, conn.dialect)}[]" for i, c in enumerate(table.columns)
        )
        updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in rest)
        statement = (
            f"INSERT INTO {table.name} ({columns}) SELECT * FROM unnest({arrays}) "  # noqa: S608
            f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
        )
        values = {f"c{i}": list(column) for i, column in enumerate(zip(*rows, strict=True))}
        conn.exec_driver_sql(statement, values)
    elif conn.dialect.name == "sqlite":
        marks = ", ".join("?" * len(names))
        updates = ", ".join(f"{name} = excluded.{name}" for name in rest)
        statement = (
            f"INSERT INTO {table.name} ({columns}) VALUES ({marks}) "  # noqa: S608
            f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
        )
        conn.exec_driver_sql(statement, list(rows))
    else:
        raise NotImplementedError(f"upsert_rows: no upsert for {conn.dialect.name}")


def insert_columns(tx: Transaction, table: Table, rows: Sequence[Sequence[object]]) -> None:
    """INSERT ``rows`` (plain driver values in ``table``'s column order) in ``tx``, with one
    statement whatever their count: on PostgreSQL each column travels as one binary typed
    array that ``unnest`` turns back into rows (psycopg's ``executemany`` would send one
    execute a row, and COPY cannot share a pipeline); on SQLite, sqlite3's ``executemany`` (a
    loop in C over one prepared statement). Inside :meth:`Transaction.pipeline` it costs no
    round trip of its own."""
    if not rows:
        return
    sql, params = _column_insert(tx, table, rows)
    if tx.hot.sqlite:
        tx.driver_executemany(sql, params)
    else:
        tx.driver_execute(sql, params)


def _column_insert(
    tx: Transaction, table: Table, rows: Sequence[Sequence[object]]
) -> tuple[str, Sequence[Any]]:
    # Table, column and type names come from the caller's Table, never from input.
    columns = ", ".join(c.name for c in table.columns)
    if tx.hot.sqlite:
        marks = ", ".join("?" * len(table.columns))
        return f"INSERT INTO {table.name} ({columns}) VALUES ({marks})", rows  # noqa: S608
    dialect = tx.hot.dialect
    arrays = ", ".join(f"%b::{_array_type(c, dialect)}[]" for c in table.columns)
    sql = f"INSERT INTO {table.name} ({columns}) SELECT * FROM unnest({arrays})"  # noqa: S608
    return sql, [list(values) for values in zip(*rows, strict=True)]
