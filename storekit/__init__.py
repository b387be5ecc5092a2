"""Hot-path SQL: statements written with SQLAlchemy Core, run without its per-call machinery.

The agency path reads a dozen rows per request. Through a SQLAlchemy ``Connection`` each of
those reads costs a pool checkout, a ``BEGIN``, the statement's cache key, an execution
context, a result object and a ``ROLLBACK``: 64 µs on SQLite (twice that when the statement
is built per call) where the driver call takes 9 µs, and 2.6 times the driver's time on
PostgreSQL (``bench/storekit.py``; this module: 15 µs, and 1.24 times the driver's time).

:class:`HotSQL` keeps the statements in SQLAlchemy (one definition, the dialect's own SQL and
parameter style), compiles each once per engine, and runs it on a DBAPI connection kept open
in autocommit: one driver call per read, and on PostgreSQL a server-side prepared statement
once psycopg has seen it a few times.

What it gives up, on purpose: no type processing. Parameters must be plain ``str``, ``int``,
``bytes`` or ``None``, and rows come back as the driver returns them (tuples; ``bytes`` for
binary columns on both databases). Statements with expanding ``IN`` parameters are refused.
Driver errors are raised as SQLAlchemy's ``DBAPIError`` family, like everywhere else, so
callers handle one set of exceptions.
"""

from __future__ import annotations

import queue
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

__all__ = ["MAX_COMPILED", "HotSQL", "Prepared", "Transaction", "hot_sql"]

Row = tuple[Any, ...]
_T = TypeVar("_T")
# Compiled statements kept per engine; far above the hot path's dozen.
MAX_COMPILED = 1024


@dataclass(frozen=True)
class Prepared:
    """One statement compiled for one dialect: its SQL and how to lay out its parameters."""

    sql: str
    names: tuple[str, ...]
    positional: bool
    defaults: Mapping[str, Any]
    columns: tuple[str, ...]

    def params(self, given: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        values = {**self.defaults, **given} if self.defaults else given
        missing = [n for n in self.names if n not in values]
        if missing:
            raise TypeError(f"missing SQL parameters: {', '.join(missing)}")
        if self.positional:
            return tuple(values[n] for n in self.names)
        return {n: values[n] for n in self.names}


class Transaction:
    """Statements inside one explicit transaction on one connection (see :meth:`HotSQL.begin`)."""

    def __init__(self, hot: HotSQL, conn: Any) -> None:
        self._hot = hot
        self._conn = conn

    def one(self, stmt: ClauseElement, **params: Any) -> Row | None:
        row = self._hot._run(self._conn, stmt, params).fetchone()
        return tuple(row) if row is not None else None

    def all(self, stmt: ClauseElement, **params: Any) -> list[Row]:
        return [tuple(r) for r in self._hot._run(self._conn, stmt, params).fetchall()]

    def execute(self, stmt: ClauseElement, **params: Any) -> int:
        cursor = self._hot._run(self._conn, stmt, params)
        return int(cursor.rowcount)

    def executemany(self, stmt: ClauseElement, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        prepared = self._hot.prepare(stmt)
        try:
            cursor = self._conn.cursor()
            try:
                cursor.executemany(prepared.sql, [prepared.params(r) for r in rows])
            finally:
                cursor.close()
        except self._hot._dbapi_error as exc:
            raise self._hot._wrap(prepared.sql, exc) from exc


class HotSQL:
    """Compiled statements and a few autocommit DBAPI connections for one engine.

    Thread-safe: each call takes a connection of its own from the idle set (opening one when
    none is idle) and puts it back afterwards; a connection that raised is closed, never
    reused. One instance serves every component on the engine (:func:`hot_sql`).
    """

    def __init__(self, engine: Engine, *, keep: int = 16) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self._positional = engine.dialect.positional
        dbapi = engine.dialect.loaded_dbapi
        self._dbapi_error: type[Exception] = dbapi.Error
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue(maxsize=keep)
        self._compiled: dict[int, tuple[ClauseElement, Prepared]] = {}
        self._lock = threading.Lock()
        self._closed = False

    # -- statements ----------------------------------------------------------------------------

    def prepare(self, stmt: ClauseElement) -> Prepared:
        """``stmt`` compiled for this engine's dialect (cached: pass module-level statements)."""
        cached = self._compiled.get(id(stmt))
        if cached is not None and cached[0] is stmt:
            return cached[1]
        compiled: SQLCompiler = stmt.compile(dialect=self.engine.dialect)  # type: ignore[assignment]
        if "POSTCOMPILE" in compiled.string:
            raise ValueError("expanding IN parameters are not supported on the hot path")
        # Positional styles (SQLite's ?) take the values in order; named ones by name.
        names = tuple(compiled.positiontup or ()) if self._positional else tuple(compiled.binds)
        defaults = {
            name: bind.value
            for name, bind in compiled.binds.items()
            if not bind.required and bind.value is not None
        }
        selected = getattr(stmt, "selected_columns", None)
        columns = tuple(selected.keys()) if selected is not None else ()
        prepared = Prepared(compiled.string, names, self._positional, defaults, columns)
        with self._lock:
            if len(self._compiled) >= MAX_COMPILED:
                # Statements built per call (not module constants) would grow this forever.
                self._compiled.clear()
            # Keep the statement alive with its compiled form, so its id is never reused.
            self._compiled[id(stmt)] = (stmt, prepared)
        return prepared

    # -- reads ---------------------------------------------------------------------------------

    def one(self, stmt: ClauseElement, **params: Any) -> Row | None:
        """The first row of a read, or None (retried once: see :meth:`_retried`)."""
        row: Row | None = self._read(stmt, params, many=False)
        return row

    def all(self, stmt: ClauseElement, **params: Any) -> list[Row]:
        rows: list[Row] = self._read(stmt, params, many=True)
        return rows

    def maps(self, stmt: ClauseElement, **params: Any) -> list[dict[str, Any]]:
        """Every row of a read as a dict keyed by the selected columns' keys."""
        columns = self.prepare(stmt).columns
        return [dict(zip(columns, row, strict=True)) for row in self.all(stmt, **params)]

    def batch(
        self, reads: Sequence[tuple[ClauseElement, Mapping[str, Any]]]
    ) -> list[list[dict[str, Any]]]:
        """Several independent reads, each answered as :meth:`maps` would: on PostgreSQL in
        one network round trip (psycopg's pipeline mode), on SQLite one after the other."""
        prepared = [(self.prepare(stmt), params) for stmt, params in reads]
        return self._retried(lambda conn: self._batch(conn, prepared))

    def _batch(
        self, conn: Any, prepared: Sequence[tuple[Prepared, Mapping[str, Any]]]
    ) -> list[list[dict[str, Any]]]:
        try:
            if self.sqlite:
                fetched = [conn.execute(p.sql, p.params(a)).fetchall() for p, a in prepared]
            else:
                with conn.pipeline():
                    cursors = [conn.execute(p.sql, p.params(a)) for p, a in prepared]
                fetched = [c.fetchall() for c in cursors]
        except self._dbapi_error as exc:
            raise self._wrap(prepared[0][0].sql if prepared else "", exc) from exc
        return [
            [dict(zip(p.columns, row, strict=True)) for row in rows]
            for (p, _), rows in zip(prepared, fetched, strict=True)
        ]

    def _read(self, stmt: ClauseElement, params: Mapping[str, Any], *, many: bool) -> Any:
        def read(conn: Any) -> Any:
            cursor = self._run(conn, stmt, params)
            try:
                if many:
                    return [tuple(r) for r in cursor.fetchall()]
                row = cursor.fetchone()
                return tuple(row) if row is not None else None
            finally:
                cursor.close()

        return self._retried(read)

    def _retried(self, work: Callable[[Any], _T]) -> _T:
        """``work`` on a connection; once more on a fresh one if the driver fails (reads have
        no effect to repeat, and a server restart leaves stale connections behind)."""
        for attempt in (1, 2):
            try:
                with self._connection() as conn:
                    return work(conn)
            except DBAPIError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    # -- writes --------------------------------------------------------------------------------

    @contextmanager
    def begin(self, *, immediate: bool = False) -> Iterator[Transaction]:
        """One transaction: committed when the block ends, rolled back (and the connection
        closed) if it raises. ``immediate`` takes SQLite's write lock at BEGIN, so a writer
        never fails later with SQLITE_BUSY_SNAPSHOT."""
        with self._connection() as conn:
            if self.sqlite:
                conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
                yield Transaction(self, conn)
                conn.execute("COMMIT")
            else:
                with conn.transaction():
                    yield Transaction(self, conn)

    # -- connections ---------------------------------------------------------------------------

    def _run(self, conn: Any, stmt: ClauseElement, params: Mapping[str, Any]) -> Any:
        prepared = self.prepare(stmt)
        try:
            return conn.execute(prepared.sql, prepared.params(params))
        except self._dbapi_error as exc:
            raise self._wrap(prepared.sql, exc) from exc

    def _wrap(self, sql: str, exc: Exception) -> DBAPIError:
        # Parameters are left out of the error: they may be personal data.
        wrapped = DBAPIError.instance(sql, None, exc, self._dbapi_error)
        assert isinstance(wrapped, DBAPIError)
        return wrapped

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self._open()
        try:
            yield conn
        except BaseException:
            # Whatever state it is in (half a transaction, a dead socket), it is not reused.
            with suppress(Exception):
                conn.close()
            raise
        if self._closed:
            conn.close()
            return
        try:
            self._idle.put_nowait(conn)
        except queue.Full:
            conn.close()

    def _open(self) -> Any:
        if self._closed:
            raise RuntimeError("this engine has been disposed")
        # Through the engine's pool, so its connect-time setup (SQLite pragmas) runs; then
        # detached: this connection is ours, not the pool's.
        try:
            proxied = self.engine.raw_connection()
        except self._dbapi_error as exc:
            raise self._wrap("(connect)", exc) from exc
        driver: Any = proxied.driver_connection
        proxied.detach()
        if self.sqlite:
            driver.isolation_level = None  # autocommit; transactions are explicit
        else:
            if driver.info.transaction_status != 0:  # not idle: end whatever the pool began
                driver.rollback()
            driver.autocommit = True
        return driver

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                return
            with suppress(Exception):
                conn.close()


_BY_ENGINE: weakref.WeakKeyDictionary[Engine, HotSQL] = weakref.WeakKeyDictionary()
_BY_ENGINE_LOCK = threading.Lock()


def hot_sql(engine: Engine) -> HotSQL:
    """The one :class:`HotSQL` of ``engine``; its connections close when the engine is
    disposed."""
    with _BY_ENGINE_LOCK:
        hot = _BY_ENGINE.get(engine)
        if hot is None:
            hot = _BY_ENGINE[engine] = HotSQL(engine)
            _on_dispose(engine, hot)
        return hot


def _on_dispose(engine: Engine, hot: HotSQL) -> None:
    ref = weakref.ref(hot)

    def closed(_engine: Engine) -> None:
        target = ref()
        if target is not None:
            target.close()
        with _BY_ENGINE_LOCK:
            _BY_ENGINE.pop(engine, None)

    event.listen(engine, "engine_disposed", closed)
