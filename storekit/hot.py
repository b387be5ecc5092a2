"""Hot-path SQL: statements written with SQLAlchemy Core, run on kept autocommit DBAPI connections.

:class:`HotSQL` keeps the statements in SQLAlchemy (one definition, the dialect's own SQL and
parameter style), compiles each once per engine, and runs it on a driver connection kept open
in autocommit: one driver call per read, no checkout, ``BEGIN``/``ROLLBACK``, cache key,
execution context or result object around it (``bench/storekit.py`` measures the difference).

Its connections keep the engine pool's promises: opened through the pool (so its connect-time
setup runs), older than the pool's ``recycle`` age replaced, pinged first when the pool
pre-pings, and all of them dropped once one has found the server gone (a restart, an
administrator's ``pg_terminate_backend``), as the pool invalidates its own. A read that fails
is tried once more on a new connection; a transaction whose ``BEGIN`` fails likewise.

What it gives up, on purpose: no type processing. Parameters must be plain ``str``, ``int``,
``bytes``, ``None`` (or a value list made by :meth:`HotSQL.listed`), and rows come back as the
driver returns them (tuples; ``bytes`` for binary columns on both databases). Statements with
expanding ``IN`` parameters are refused. Driver errors are raised as SQLAlchemy's
``DBAPIError`` family, without their parameters, so callers handle one set of exceptions.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    ARRAY,
    Column,
    ColumnElement,
    Connection,
    Engine,
    String,
    any_,
    bindparam,
    event,
    func,
    select,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

__all__ = ["MAX_COMPILED", "HotSQL", "Prepared", "Transaction", "durable_writer", "hot_sql"]

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


class _Kept:
    """A driver connection, when it was opened, and the generation it belongs to."""

    __slots__ = ("driver", "generation", "opened")

    def __init__(self, driver: Any, generation: int) -> None:
        self.driver = driver
        self.generation = generation
        self.opened = time.monotonic()


class Transaction:
    """Statements inside one explicit transaction on one connection (:meth:`HotSQL.begin`,
    or :meth:`of` a SQLAlchemy connection's transaction)."""

    def __init__(self, hot: HotSQL, driver: Any) -> None:
        self.hot = hot
        self.driver = driver
        # The first row of the read :meth:`HotSQL.begin` sent with the BEGIN, if it was given one.
        self.opening_row: Row | None = None
        self.committed = False

    @classmethod
    def of(cls, conn: Connection) -> Transaction:
        """Statements in ``conn``'s own transaction (begun by its owner, who commits it)."""
        return cls(hot_sql(conn.engine), conn.connection.dbapi_connection)

    def one(self, stmt: ClauseElement, **params: Any) -> Row | None:
        cursor = self.hot._run(self.driver, stmt, params)
        try:
            row = cursor.fetchone()
        finally:
            cursor.close()
        return tuple(row) if row is not None else None

    def all(self, stmt: ClauseElement, **params: Any) -> list[Row]:
        cursor = self.hot._run(self.driver, stmt, params)
        try:
            return [tuple(r) for r in cursor.fetchall()]
        finally:
            cursor.close()

    def send(self, stmt: ClauseElement, **params: Any) -> None:
        """Run a write without reading its result: inside :meth:`pipeline`, it costs no
        round trip of its own."""
        self.hot._run(self.driver, stmt, params)

    def execute(self, stmt: ClauseElement, **params: Any) -> int:
        cursor = self.hot._run(self.driver, stmt, params)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def executemany(self, stmt: ClauseElement, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        prepared = self.hot.prepare(stmt)
        self.driver_executemany(prepared.sql, [prepared.params(r) for r in rows])

    def driver_execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Driver SQL written by ``storekit`` itself (``storekit.bulk``), never by a room."""
        try:
            self.driver.execute(sql, params)
        except self.hot._dbapi_error as exc:
            raise self.hot._wrap(sql, exc, self.driver) from exc

    def driver_executemany(self, sql: str, rows: Sequence[Any]) -> None:
        # The cursor is left open: inside a pipeline its results arrive only at the sync.
        try:
            self.driver.cursor().executemany(sql, rows)
        except self.hot._dbapi_error as exc:
            raise self.hot._wrap(sql, exc, self.driver) from exc

    def commit(self) -> None:
        """Commit a transaction of :meth:`HotSQL.begin` before its block ends. Inside
        :meth:`pipeline` the COMMIT travels with the block's statements, so the writes and the
        commit cost one round trip; if any of them fails, the pipeline skips the COMMIT and the
        block's end rolls the transaction back. Never on a transaction of :meth:`of`: its
        owner commits."""
        self.driver_execute("COMMIT")
        self.committed = True

    @contextmanager
    def pipeline(self) -> Iterator[None]:
        """The statements inside sent in one network round trip (psycopg's pipeline mode; on
        SQLite, an in-process database, they simply run). Errors surface by the block's end."""
        if self.hot.sqlite:
            yield
            return
        try:
            with self.driver.pipeline():
                yield
        except self.hot._dbapi_error as exc:
            raise self.hot._wrap("(pipeline)", exc, self.driver) from exc


class HotSQL:
    """Compiled statements and a few autocommit DBAPI connections for one engine.

    Thread-safe: each call takes a connection of its own from the idle set (opening one when
    none is idle) and puts it back afterwards; a connection that raised is closed, never
    reused. Its connections close when the engine is disposed, or :meth:`close` is called.
    :func:`hot_sql` gives the one instance every component on an engine shares.

    ``durable``: commits survive a power loss (SQLite: ``synchronous=FULL`` on these
    connections; PostgreSQL commits are durable already). ``lock_timeout_s``: the longest a
    statement in :meth:`begin` waits for a row lock (PostgreSQL's ``lock_timeout``, set for the
    transaction only, so it holds behind a transaction-pooling PgBouncer; SQLite waits for its
    write lock as long as the engine's busy timeout).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        keep: int = 16,
        durable: bool = False,
        lock_timeout_s: int | None = None,
    ) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        self.sqlite = engine.dialect.name == "sqlite"
        self.durable = durable
        self.lock_timeout_s = lock_timeout_s
        self._positional = engine.dialect.positional
        self._dbapi_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        pool: Any = engine.pool
        self._recycle: float = getattr(pool, "_recycle", -1)
        self._pre_ping: bool = bool(getattr(pool, "_pre_ping", False))
        self._generation = 0
        self._idle: queue.LifoQueue[_Kept] = queue.LifoQueue(maxsize=keep)
        self._compiled: dict[int, tuple[ClauseElement, Prepared]] = {}
        self._lock = threading.Lock()
        ref = weakref.ref(self)

        def disposed(_engine: Engine) -> None:
            target = ref()
            if target is not None:
                target.close()

        event.listen(engine, "engine_disposed", disposed)

    # -- statements ----------------------------------------------------------------------------

    def prepare(self, stmt: ClauseElement) -> Prepared:
        """``stmt`` compiled for this engine's dialect (cached: pass module-level statements)."""
        cached = self._compiled.get(id(stmt))
        if cached is not None and cached[0] is stmt:
            return cached[1]
        compiled: SQLCompiler = stmt.compile(dialect=self.dialect)  # type: ignore[assignment]
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

    def among(self, column: Column[Any], name: str) -> ColumnElement[bool]:
        """``column`` is one of the values of parameter ``name`` (pass them through
        :meth:`listed`): one parameter whatever their count, hence one statement to compile
        and prepare. ``column = ANY(array)`` on PostgreSQL, ``column IN (SELECT value FROM
        json_each(?))`` on SQLite: an index search a value either way."""
        if self.sqlite:
            listed = func.json_each(bindparam(name, type_=String()))
            return column.in_(select(listed.table_valued("value").c.value))
        return column == any_(bindparam(name, type_=ARRAY(column.type)))

    def listed(self, values: Sequence[Any]) -> Any:
        """``values`` as the parameter of an :meth:`among` condition."""
        return orjson.dumps(list(values)).decode() if self.sqlite else list(values)

    # -- reads ---------------------------------------------------------------------------------

    def one(self, stmt: ClauseElement, **params: Any) -> Row | None:
        """The first row of a read, or None."""
        return self._retried(lambda tx: tx.one(stmt, **params))

    def all(self, stmt: ClauseElement, **params: Any) -> list[Row]:
        return self._retried(lambda tx: tx.all(stmt, **params))

    def maps(self, stmt: ClauseElement, **params: Any) -> list[dict[str, Any]]:
        """Every row of a read as a dict keyed by the selected columns' keys."""
        columns = self.prepare(stmt).columns
        return [dict(zip(columns, row, strict=True)) for row in self.all(stmt, **params)]

    def batch(
        self, reads: Sequence[tuple[ClauseElement, Mapping[str, Any]]]
    ) -> list[list[dict[str, Any]]]:
        """Several independent reads, each answered as :meth:`maps` would, in one network
        round trip (:meth:`Transaction.pipeline`)."""
        prepared = [(self.prepare(stmt), params) for stmt, params in reads]

        def run(tx: Transaction) -> list[list[dict[str, Any]]]:
            conn = tx.driver
            try:
                with tx.pipeline():
                    cursors = [conn.execute(p.sql, p.params(a)) for p, a in prepared]
                fetched = [c.fetchall() for c in cursors]
            except self._dbapi_error as exc:
                raise self._wrap(prepared[0][0].sql if prepared else "", exc, conn) from exc
            return [
                [dict(zip(p.columns, row, strict=True)) for row in rows]
                for (p, _), rows in zip(prepared, fetched, strict=True)
            ]

        return self._retried(run)

    def _retried(self, work: Callable[[Transaction], _T]) -> _T:
        """``work`` on a connection; once more on a new one if the driver fails (reads have
        no effect to repeat, and a server restart leaves stale connections behind)."""
        try:
            with self._connection() as kept:
                return work(Transaction(self, kept.driver))
        except DBAPIError:
            with self._connection(fresh=True) as kept:
                return work(Transaction(self, kept.driver))

    # -- writes --------------------------------------------------------------------------------

    @contextmanager
    def begin(
        self, *, immediate: bool = False, opening: ClauseElement | None = None
    ) -> Iterator[Transaction]:
        """One transaction: committed when the block ends (or earlier, by
        :meth:`Transaction.commit`), rolled back (and the connection closed) if it raises.
        ``immediate`` takes SQLite's write lock at BEGIN, so a writer never fails later with
        SQLITE_BUSY_SNAPSHOT; PostgreSQL locks rows as it goes. ``opening``: a read (with no
        parameters) sent in the same round trip as the BEGIN, its first row left in
        :attr:`Transaction.opening_row`; a row lock it takes is then held from the first
        round trip on."""
        kept = self._checkout(fresh=False)
        tx = Transaction(self, kept.driver)
        try:
            self._begin(tx, immediate, opening)
        except DBAPIError as exc:
            self._drop(kept)
            if opening is not None and not exc.connection_invalidated:
                raise  # the read itself failed (a lock not granted in time): not worth a retry
            # Nothing was done on it yet: a new connection may begin instead.
            kept = self._checkout(fresh=True)
            tx = Transaction(self, kept.driver)
            try:
                self._begin(tx, immediate, opening)
            except BaseException:
                self._drop(kept)
                raise
        except BaseException:
            self._drop(kept)
            raise
        try:
            yield tx
            if not tx.committed:
                tx.driver_execute("COMMIT")
        except BaseException:
            # Closing it rolls back whatever the block wrote.
            self._drop(kept)
            raise
        self._checkin(kept)

    def _begin(self, tx: Transaction, immediate: bool, opening: ClauseElement | None) -> None:
        if self.sqlite:
            tx.driver_execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            if opening is not None:
                tx.opening_row = tx.one(opening)
            return
        cursor = None
        with tx.pipeline():
            tx.driver_execute("BEGIN")
            if self.lock_timeout_s is not None:
                tx.driver_execute(f"SET LOCAL lock_timeout = '{int(self.lock_timeout_s)}s'")
            if opening is not None:
                cursor = self._run(tx.driver, opening, {})
        if cursor is not None:
            try:
                row = cursor.fetchone()
            except self._dbapi_error as exc:
                raise self._wrap("(opening read)", exc, tx.driver) from exc
            finally:
                cursor.close()
            tx.opening_row = tuple(row) if row is not None else None

    # -- connections ---------------------------------------------------------------------------

    def _run(self, conn: Any, stmt: ClauseElement, params: Mapping[str, Any]) -> Any:
        prepared = self.prepare(stmt)
        try:
            return conn.execute(prepared.sql, prepared.params(params))
        except self._dbapi_error as exc:
            raise self._wrap(prepared.sql, exc, conn) from exc

    def _wrap(self, sql: str, exc: Exception, conn: Any = None) -> DBAPIError:
        disconnect = conn is not None and self.dialect.is_disconnect(exc, conn, None)  # type: ignore[arg-type]
        if disconnect:
            # The server is gone or restarted: every kept connection is as stale as this one.
            with self._lock:
                self._generation += 1
        # Parameters are left out of the error: they may be personal data.
        wrapped = DBAPIError.instance(
            sql,
            None,
            exc,
            self._dbapi_error,
            hide_parameters=True,
            dialect=self.dialect,
            connection_invalidated=disconnect,
        )
        assert isinstance(wrapped, DBAPIError)
        return wrapped

    @contextmanager
    def _connection(self, *, fresh: bool = False) -> Iterator[_Kept]:
        kept = self._checkout(fresh)
        try:
            yield kept
        except BaseException:
            # Whatever state it is in (half a transaction, a dead socket), it is not reused.
            self._drop(kept)
            raise
        self._checkin(kept)

    def _checkin(self, kept: _Kept) -> None:
        if kept.generation != self._generation:
            self._drop(kept)
            return
        try:
            self._idle.put_nowait(kept)
        except queue.Full:
            self._drop(kept)

    def _checkout(self, fresh: bool) -> _Kept:
        while not fresh:
            try:
                kept = self._idle.get_nowait()
            except queue.Empty:
                break
            if self._usable(kept):
                return kept
            self._drop(kept)
        return self._open()

    def _usable(self, kept: _Kept) -> bool:
        if kept.generation != self._generation:
            return False
        if 0 <= self._recycle < time.monotonic() - kept.opened:
            return False
        if self._pre_ping:
            try:
                return bool(self.dialect.do_ping(kept.driver))
            except self._dbapi_error:
                return False
        return True

    @staticmethod
    def _drop(kept: _Kept) -> None:
        with suppress(Exception):
            kept.driver.close()

    def _open(self) -> _Kept:
        generation = self._generation
        # Through the engine's pool, so its connect-time setup (SQLite pragmas, the driver's
        # prepared-statement setting) runs; then detached: this connection is ours.
        try:
            proxied = self.engine.raw_connection()
        except self._dbapi_error as exc:
            raise self._wrap("(connect)", exc) from exc
        driver: Any = proxied.driver_connection
        proxied.detach()
        try:
            if self.sqlite:
                driver.isolation_level = None  # autocommit; transactions are explicit
                if self.durable:
                    # A WAL commit fsynced before it returns (NORMAL may lose the last
                    # commits on power loss).
                    driver.execute("PRAGMA synchronous=FULL")
            else:
                if driver.info.transaction_status != 0:  # not idle: end what the pool began
                    driver.rollback()
                driver.autocommit = True
        except self._dbapi_error as exc:
            with suppress(Exception):
                driver.close()
            raise self._wrap("(connect)", exc, driver) from exc
        return _Kept(driver, generation)

    def close(self) -> None:
        """Close every kept connection (those in use, when they come back). The runner stays
        usable, as a disposed engine does: it opens new connections as needed."""
        with self._lock:
            self._generation += 1
        while True:
            try:
                kept = self._idle.get_nowait()
            except queue.Empty:
                return
            self._drop(kept)


_BY_ENGINE: weakref.WeakKeyDictionary[Engine, HotSQL] = weakref.WeakKeyDictionary()
_BY_ENGINE_LOCK = threading.Lock()


def hot_sql(engine: Engine) -> HotSQL:
    """The one shared :class:`HotSQL` of ``engine``."""
    with _BY_ENGINE_LOCK:
        hot = _BY_ENGINE.get(engine)
        if hot is None:
            hot = _BY_ENGINE[engine] = HotSQL(engine)
        return hot


def durable_writer(conn: Connection) -> Connection:
    """``conn`` made fit for a writer whose commits must survive a power loss and whose
    transactions hold the write lock from their first read (the audit log's sequencer, and a
    caller appending to the log in its own transaction). On SQLite: ``synchronous=FULL`` (a WAL
    commit fsynced before it returns) and transactions begun IMMEDIATE (the engine's
    ``sqlite_begin`` execution option, which ``gateway.db`` honours). PostgreSQL needs neither:
    its commits are durable and its writers lock rows as they go."""
    if conn.dialect.name != "sqlite":
        return conn
    # On the driver connection, so that the pragma does not open a transaction of its own.
    conn.connection.dbapi_connection.execute("PRAGMA synchronous=FULL")  # type: ignore[union-attr]
    return conn.execution_options(sqlite_begin="IMMEDIATE")


def truncate_wal(engine: Engine) -> None:
    """SQLite: move the committed pages into the main file and empty the write-ahead log, so
    that pages a transaction overwrote (an erased key) leave the disk too. Best effort: a long
    reader can hold the checkpoint back, and the next one completes it. Nothing elsewhere."""
    if engine.dialect.name != "sqlite":
        return
    raw = engine.raw_connection()  # outside any transaction, as the pragma needs
    try:
        with contextlib.suppress(Exception):
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
    finally:
        raw.close()
