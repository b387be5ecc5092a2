"""The storage seam: what the log needs from a database, and the SQLAlchemy driver for it.

As in Trillian and Tessera, log semantics (sequencing, the tree, checkpoints, proofs; see
``audit.log``) sit above a narrow driver interface. The driver's one hard duty is
:meth:`SqlStorage.sequencer`: an exclusive, cross-process critical section in which the tree head
is read and the next batch of leaves is written, so that every worker process on every host sees
one total order without gaps or duplicates. On PostgreSQL the head row is locked
``FOR UPDATE``; on SQLite the transaction starts ``BEGIN IMMEDIATE`` (the database-wide write
lock, taken before anything is read).

Rows are append-only: the audit migration installs triggers that reject UPDATE/DELETE (and
TRUNCATE on PostgreSQL) of entries, nodes and checkpoints, and any shrinking of the head.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeVar

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    Select,
    String,
    Table,
    Text,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy.exc import DBAPIError

from audit.merkle import NodeKey

_T = TypeVar("_T")
metadata = MetaData()

head_table = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("tree_size", BigInteger, nullable=False),
    Column("root_hash", LargeBinary(32), nullable=False),
)
entries_table = Table(
    "audit_entries",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("entry", Text, nullable=False),
    Column("time_ns", BigInteger, nullable=False),
    Column("subject", String(128)),
    Column("actor_kind", String(16), nullable=False),
    Column("actor_id", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("purpose", String(200)),
    Column("outcome", String(8), nullable=False),
)
nodes_table = Table(
    "audit_nodes",
    metadata,
    # (level << 48) | index: one integer key so a proof is a single primary-key IN lookup.
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)
checkpoints_table = Table(
    "audit_checkpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tree_size", BigInteger, nullable=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("timestamp_ns", BigInteger, nullable=False),
    Column("note", Text, nullable=False),
)

meta_table = Table(
    "audit_meta",
    metadata,
    # Set once when the log is initialised (origin, verifier key), never changed: a verifier
    # reads them here instead of deriving them from how the server happens to be run.
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
cosignatures_table = Table(
    "audit_cosignatures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tree_size", BigInteger, nullable=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("witness", String(200), nullable=False),
    Column("line", Text, nullable=False),
)

LEVEL_SHIFT = 48
# The subject index (migration audit_0002) is keyed by segment first: idx / SUBJECT_SEGMENT.
SUBJECT_SEGMENT = 1 << 16
SEGMENTS_A_STATEMENT = 64  # a subject listing searches this many segments a statement
LOCK_TIMEOUT_S = 10  # PostgreSQL: longest wait for the tree-head lock (SQLite: busy_timeout)


def node_id(key: NodeKey) -> int:
    level, index = key
    return (level << LEVEL_SHIFT) | index


def node_key(ident: int) -> NodeKey:
    return ident >> LEVEL_SHIFT, ident & ((1 << LEVEL_SHIFT) - 1)


class StoredEntry(NamedTuple):
    """One log row: the canonical entry bytes and the columns the auditors filter on. (A named
    tuple: a batch builds two a household, and a frozen dataclass's ``__init__`` costs ten
    ``object.__setattr__`` calls.)"""

    index: int  # type: ignore[assignment]  # the leaf index; shadows tuple.index, unused here
    leaf_hash: bytes
    entry: bytes
    time_ns: int
    subject: str | None
    actor_kind: str
    actor_id: str
    action: str
    purpose: str | None
    outcome: str


@dataclass(frozen=True)
class StoredCheckpoint:
    tree_size: int
    root_hash: bytes
    timestamp_ns: int
    note: str


@dataclass(frozen=True)
class EntryFilter:
    """What an auditor (or a citizen, by ``subject``) may narrow a listing to."""

    agency: str | None = None
    purpose: str | None = None
    action: str | None = None
    outcome: str | None = None
    subject: str | None = None
    since_ns: int | None = None
    until_ns: int | None = None


class Sequencer(Protocol):
    """The inside of the exclusive section: the head as of now, and one atomic write."""

    tree_size: int
    root_hash: bytes

    def read_nodes(self, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]: ...

    def write(
        self,
        entries: Sequence[StoredEntry],
        nodes: Sequence[tuple[int, int, bytes]],
        tree_size: int,
        root_hash: bytes,
        checkpoint: StoredCheckpoint | None,
    ) -> None: ...


class LogStorage(Protocol):
    """The driver interface the log is written against."""

    def sequencer(self, transaction: Any = None) -> AbstractContextManager[Sequencer]: ...

    def head(self) -> tuple[int, bytes]: ...

    def read_nodes(self, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]: ...

    def entries(self, start: int, end: int) -> Iterator[StoredEntry]: ...

    def entry(self, index: int) -> StoredEntry | None: ...

    def find(
        self, where: EntryFilter, *, after: int | None, before: int | None, limit: int
    ) -> list[StoredEntry]: ...

    def stats(self, since_ns: int | None, until_ns: int | None) -> list[dict[str, Any]]: ...

    def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None: ...

    def latest_checkpoint(
        self, min_size: int = 0, min_cosignatures: int = 0
    ) -> StoredCheckpoint | None: ...

    def checkpoints(self) -> list[StoredCheckpoint]: ...

    def add_cosignatures(
        self, tree_size: int, root_hash: bytes, lines: Sequence[tuple[str, str]]
    ) -> None: ...

    def cosignatures(self, tree_size: int, root_hash: bytes) -> list[str]: ...

    def meta(self) -> dict[str, str]: ...

    def init_meta(self, values: dict[str, str]) -> dict[str, str]: ...

    def nodes(self, min_level: int = 1) -> Iterator[tuple[int, int, bytes]]: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


def _row_entry(row: Any) -> StoredEntry:
    return StoredEntry(
        index=row.idx,
        leaf_hash=bytes(row.leaf_hash),
        entry=row.entry.encode(),
        time_ns=row.time_ns,
        subject=row.subject,
        actor_kind=row.actor_kind,
        actor_id=row.actor_id,
        action=row.action,
        purpose=row.purpose,
        outcome=row.outcome,
    )


def _row_checkpoint(row: Any) -> StoredCheckpoint:
    return StoredCheckpoint(row.tree_size, bytes(row.root_hash), row.timestamp_ns, row.note)


def _read_nodes(conn: Connection, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
    ids = [node_id(k) for k in keys]
    if not ids:
        return {}
    if conn.dialect.name == "postgresql":
        # One parameter whatever the count: a single primary-key index probe per node.
        rows = conn.exec_driver_sql("SELECT id, hash FROM audit_nodes WHERE id = ANY(%s)", (ids,))
    else:
        rows = conn.exec_driver_sql(
            f"SELECT id, hash FROM audit_nodes WHERE id IN ({', '.join('?' * len(ids))})",  # noqa: S608 - placeholders only
            tuple(ids),
        )
    return {node_key(r[0]): bytes(r[1]) for r in rows}


_SQLITE_INSERT_ENTRIES = (
    "INSERT INTO audit_entries (idx, leaf_hash, entry, time_ns, subject, actor_kind, actor_id, "
    "action, purpose, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_PG_INSERT_ENTRIES = (
    "INSERT INTO audit_entries (idx, leaf_hash, entry, time_ns, subject, actor_kind, actor_id, "
    "action, purpose, outcome) SELECT * FROM unnest(%b::bigint[], %b::bytea[], %b::text[], "
    "%b::bigint[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[])"
)
_PG_INSERT_NODES = (
    "INSERT INTO audit_nodes (id, hash) SELECT * FROM unnest(%b::bigint[], %b::bytea[])"
)


def _entry_tuple(e: StoredEntry) -> tuple[Any, ...]:
    return (e.index, e.leaf_hash, e.entry.decode(), *e[3:])


def _pg_write(
    conn: Connection,
    entries: Sequence[StoredEntry],
    nodes: Sequence[tuple[int, int, bytes]],
    tree_size: int,
    root_hash: bytes,
    checkpoint: StoredCheckpoint | None,
) -> None:
    """The whole batch in one network round trip (psycopg pipeline mode) and one statement
    per table whatever the batch size: rows travel as binary (``%b``) typed arrays that
    ``unnest`` turns back into rows (psycopg's executemany would send one execute a row)."""
    raw: Any = conn.connection.dbapi_connection
    with raw.pipeline(), raw.cursor() as cur:
        if entries:
            columns = list(zip(*(_entry_tuple(e) for e in entries), strict=True))
            cur.execute(
                _PG_INSERT_ENTRIES,
                tuple(list(c) for c in columns),
            )
        if nodes:
            cur.execute(
                _PG_INSERT_NODES,
                ([node_id((level, index)) for level, index, _ in nodes], [h for _, _, h in nodes]),
            )
        cur.execute(
            "UPDATE audit_head SET tree_size = %s, root_hash = %b WHERE id = 1",
            (tree_size, root_hash),
        )
        if checkpoint is not None:
            cur.execute(
                "INSERT INTO audit_checkpoints (tree_size, root_hash, timestamp_ns, note) "
                "VALUES (%s, %b, %s, %s)",
                (
                    checkpoint.tree_size,
                    checkpoint.root_hash,
                    checkpoint.timestamp_ns,
                    checkpoint.note,
                ),
            )


# The tree head, read as driver SQL: it opens every batch (once per group commit) and bounds
# every subject listing. Locked on PostgreSQL when a batch opens.
_READ_HEAD = "SELECT tree_size, root_hash FROM audit_head WHERE id = 1"
_LOCK_HEAD_PG = _READ_HEAD + " FOR UPDATE"


class _SqlSequencer:
    def __init__(self, conn: Connection, tree_size: int, root_hash: bytes) -> None:
        self.conn = conn
        self.tree_size = tree_size
        self.root_hash = root_hash

    def read_nodes(self, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
        return _read_nodes(self.conn, keys)

    def write(
        self,
        entries: Sequence[StoredEntry],
        nodes: Sequence[tuple[int, int, bytes]],
        tree_size: int,
        root_hash: bytes,
        checkpoint: StoredCheckpoint | None,
    ) -> None:
        if self.conn.dialect.name == "postgresql":
            _pg_write(self.conn, entries, nodes, tree_size, root_hash, checkpoint)
            return
        # sqlite3's executemany loops in C: one prepared statement, many rows.
        if entries:
            self.conn.exec_driver_sql(_SQLITE_INSERT_ENTRIES, [_entry_tuple(e) for e in entries])
        if nodes:
            self.conn.exec_driver_sql(
                "INSERT INTO audit_nodes (id, hash) VALUES (?, ?)",
                [(node_id((level, index)), h) for level, index, h in nodes],
            )
        self.conn.exec_driver_sql(
            "UPDATE audit_head SET tree_size = ?, root_hash = ? WHERE id = 1",
            (tree_size, root_hash),
        )
        if checkpoint is not None:
            _insert_checkpoint(self.conn, checkpoint)


def _insert_checkpoint(conn: Connection, cp: StoredCheckpoint) -> None:
    conn.execute(
        insert(checkpoints_table).values(
            tree_size=cp.tree_size,
            root_hash=cp.root_hash,
            timestamp_ns=cp.timestamp_ns,
            note=cp.note,
        )
    )


def sqlite_appending(conn: Connection) -> Connection:
    """``conn`` made fit to commit audit entries on SQLite (returned as is on PostgreSQL): the
    sequencer's own connection, and a caller's that appends in its transaction
    (:meth:`AuditLog.append_many`). The audit store promises durability before an append
    returns: FULL makes a WAL commit fsync (NORMAL may lose the last commits on power loss),
    and a transaction begun IMMEDIATE holds the write lock from its first read."""
    if conn.dialect.name != "sqlite":
        return conn
    # On the raw connection, so that the pragma does not open a transaction of its own.
    raw: Any = conn.connection.dbapi_connection
    raw.execute("PRAGMA synchronous=FULL")
    return conn.execution_options(sqlite_begin="IMMEDIATE")


class SqlStorage:
    """The SQLAlchemy driver; the same code on SQLite and PostgreSQL."""

    # Entries a segment of the subject index. A listing by subject is correct whatever the
    # value; only SUBJECT_SEGMENT, the migration's, lets the database use the index.
    subject_segment = SUBJECT_SEGMENT

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        # One long-lived connection for the sequencer: no pool checkout and pre-ping round
        # trip per batch. Only one batch per process writes at a time (the lock), and a
        # connection that failed is dropped so the next batch starts on a fresh one.
        self._writer: Connection | None = None
        self._writer_lock = threading.Lock()
        self._readers: queue.Queue[Connection] = queue.Queue(maxsize=4)

    def _writer_connection(self) -> Connection:
        if self._writer is None or self._writer.closed or self._writer.invalidated:
            conn = sqlite_appending(self.engine.connect())
            if not self.sqlite:
                # A writer stuck holding the head lock must not stall every request forever:
                # after LOCK_TIMEOUT the append fails (AuditUnavailable: fail closed, 503).
                conn.exec_driver_sql(f"SET lock_timeout = '{LOCK_TIMEOUT_S}s'")
                conn.commit()
            self._writer = conn
        return self._writer

    def _drop_writer(self) -> None:
        conn, self._writer = self._writer, None
        if conn is not None:
            with suppress(Exception):
                conn.invalidate()
            with suppress(Exception):
                conn.close()

    def close(self) -> None:
        with self._writer_lock:
            self._drop_writer()
        while True:
            try:
                conn = self._readers.get_nowait()
            except queue.Empty:
                return
            with suppress(Exception):
                conn.close()

    def _read_locked_head(self, conn: Connection) -> tuple[int, bytes]:
        """The tree head, read in ``conn``'s write transaction. SQLite: BEGIN IMMEDIATE already
        holds the write lock. PostgreSQL: the head row lock serialises sequencers across
        processes; readers are not blocked."""
        row = conn.exec_driver_sql(_READ_HEAD if self.sqlite else _LOCK_HEAD_PG)
        head = row.one_or_none()
        if head is None:
            raise LookupError("the audit store has no tree head (run the migrations)")
        return head.tree_size, bytes(head.root_hash)

    def _lock_head(self) -> tuple[Connection, int, bytes]:
        """Begin the exclusive section and read the head (retried once on a stale connection,
        e.g. after a database restart: nothing was written yet, so retrying is safe)."""
        for attempt in (1, 2):
            conn = self._writer_connection()
            try:
                conn.begin()
                size, root = self._read_locked_head(conn)
            except DBAPIError:
                self._drop_writer()
                if attempt == 2:
                    raise
                continue
            except LookupError:
                conn.rollback()
                raise
            return conn, size, root
        raise AssertionError("unreachable")

    @contextmanager
    def sequencer(self, transaction: Connection | None = None) -> Iterator[_SqlSequencer]:
        """The exclusive section of an append: the head locked and read, the batch written,
        committed. In ``transaction`` (a connection to this store's database with a write
        transaction open; on SQLite begun IMMEDIATE, or having written already) the caller
        commits or rolls back, and on SQLite its connection's ``synchronous`` setting decides
        how durable the commit is (FULL, as the sequencer's own connection has, to keep the
        log's promise)."""
        if transaction is not None:
            yield _SqlSequencer(transaction, *self._read_locked_head(transaction))
            return
        with self._writer_lock:
            conn, size, root = self._lock_head()
            try:
                yield _SqlSequencer(conn, size, root)
                conn.commit()
            except BaseException:
                self._drop_writer()  # rolls back: a half-written batch never commits
                raise

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A connection for the hot reads (proofs, head) from a few kept open in autocommit:
        one round trip a read, no pool pre-ping and no BEGIN/ROLLBACK around it."""
        try:
            conn = self._readers.get_nowait()
        except queue.Empty:
            conn = self.engine.connect()
            if not self.sqlite:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        try:
            yield conn
            if conn.in_transaction():
                conn.rollback()
        except BaseException:
            with suppress(Exception):
                conn.invalidate()
            with suppress(Exception):
                conn.close()
            raise
        try:
            self._readers.put_nowait(conn)
        except queue.Full:
            conn.close()

    def _read(self, fn: Callable[[Connection], _T]) -> _T:
        try:
            with self._reading() as conn:
                return fn(conn)
        except DBAPIError:
            with self._reading() as conn:  # once more on a fresh connection: reads are safe
                return fn(conn)

    def head(self) -> tuple[int, bytes]:
        def run(conn: Connection) -> tuple[int, bytes]:
            row = conn.exec_driver_sql(_READ_HEAD)
            size, root = row.one()
            return int(size), bytes(root)

        return self._read(run)

    def read_nodes(self, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
        wanted = list(keys)
        return self._read(lambda conn: _read_nodes(conn, wanted))

    def entries(self, start: int, end: int, *, chunk: int = 5000) -> Iterator[StoredEntry]:
        """Rows with ``start <= idx < end`` in index order, read in chunks (exports, verify)."""
        pos = start
        while pos < end:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(entries_table)
                    .where(entries_table.c.idx >= pos, entries_table.c.idx < min(end, pos + chunk))
                    .order_by(entries_table.c.idx)
                ).all()
            yield from (_row_entry(r) for r in rows)
            pos += chunk

    def entry(self, index: int) -> StoredEntry | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(entries_table).where(entries_table.c.idx == index)
            ).one_or_none()
        return _row_entry(row) if row is not None else None

    def find(
        self,
        where: EntryFilter,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> list[StoredEntry]:
        c = entries_table.c
        conds = []
        if where.agency is not None:
            conds.append(c.actor_id == where.agency)
        for column, value in (
            (c.purpose, where.purpose),
            (c.action, where.action),
            (c.outcome, where.outcome),
        ):
            if value is not None:
                conds.append(column == value)
        if where.since_ns is not None:
            conds.append(c.time_ns >= where.since_ns)
        if where.until_ns is not None:
            conds.append(c.time_ns < where.until_ns)
        if after is not None:
            conds.append(c.idx > after)
        if before is not None:
            conds.append(c.idx < before)
        order = c.idx.desc() if before is not None else c.idx
        query = select(entries_table).where(*conds).order_by(order)
        with self.engine.connect() as conn:
            if where.subject is None:
                return [_row_entry(r) for r in conn.execute(query.limit(limit))]
            return self._find_subject(conn, query, where.subject, after, before, limit)

    def _find_subject(
        self,
        conn: Connection,
        query: Select[Any],
        subject: str,
        after: int | None,
        before: int | None,
        limit: int,
    ) -> list[StoredEntry]:
        """``query`` narrowed to ``subject``, through the segment index (migration
        audit_0002): one index search a segment, a group of segments a statement, in the
        listing's order (newest first below ``before``), until ``limit`` rows are found."""
        width = self.subject_segment
        size = conn.exec_driver_sql(_READ_HEAD).one()[0]
        top = size if before is None else min(before, size)  # the listing's idx < top
        bottom = 0 if after is None else max(after + 1, 0)  # and idx >= bottom
        if top <= bottom:
            return []
        first, last = bottom // width, (top - 1) // width
        segments = range(last, first - 1, -1) if before is not None else range(first, last + 1)
        # Spelt as the index spells it: the planner matches the expression, not its value.
        segment: ColumnElement[int] = literal_column(f"{entries_table.name}.idx / {width}")
        query = query.where(entries_table.c.subject == subject)
        found: list[StoredEntry] = []
        for start in range(0, len(segments), SEGMENTS_A_STATEMENT):
            group = list(segments[start : start + SEGMENTS_A_STATEMENT])
            rows = conn.execute(query.where(segment.in_(group)).limit(limit - len(found)))
            found.extend(_row_entry(r) for r in rows)
            if len(found) == limit:
                break
        return found

    def stats(
        self, since_ns: int | None = None, until_ns: int | None = None
    ) -> list[dict[str, Any]]:
        c = entries_table.c
        conds = []
        if since_ns is not None:
            conds.append(c.time_ns >= since_ns)
        if until_ns is not None:
            conds.append(c.time_ns < until_ns)
        query = (
            select(
                c.actor_kind, c.actor_id, c.purpose, c.action, c.outcome, func.count().label("n")
            )
            .where(*conds)
            .group_by(c.actor_kind, c.actor_id, c.purpose, c.action, c.outcome)
            .order_by(c.actor_kind, c.actor_id, c.purpose, c.action, c.outcome)
        )
        with self.engine.connect() as conn:
            return [
                {
                    "actor_kind": r.actor_kind,
                    "agency": r.actor_id,
                    "purpose": r.purpose,
                    "action": r.action,
                    "outcome": r.outcome,
                    "count": r.n,
                }
                for r in conn.execute(query)
            ]

    def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        with self.engine.begin() as conn:
            _insert_checkpoint(conn, checkpoint)

    def latest_checkpoint(
        self, min_size: int = 0, min_cosignatures: int = 0
    ) -> StoredCheckpoint | None:
        """The checkpoint of the largest tree (at least ``min_size``), among those carrying at
        least ``min_cosignatures`` witness cosignatures."""
        t = checkpoints_table
        query = select(t).where(t.c.tree_size >= min_size)
        if min_cosignatures:
            c = cosignatures_table.c
            cosigned = (
                select(func.count(func.distinct(c.witness)))
                .where(c.tree_size == t.c.tree_size, c.root_hash == t.c.root_hash)
                .scalar_subquery()
            )
            query = query.where(cosigned >= min_cosignatures)
        with self.engine.connect() as conn:
            # Largest tree first: processes may store checkpoints out of id order.
            row = conn.execute(
                query.order_by(t.c.tree_size.desc(), t.c.id.desc()).limit(1)
            ).one_or_none()
        return _row_checkpoint(row) if row is not None else None

    def add_cosignatures(
        self, tree_size: int, root_hash: bytes, lines: Sequence[tuple[str, str]]
    ) -> None:
        """Store witnesses' cosignature lines (``(witness name, line)``) for one checkpoint."""
        if not lines:
            return
        with self.engine.begin() as conn:
            conn.execute(
                insert(cosignatures_table),
                [
                    {"tree_size": tree_size, "root_hash": root_hash, "witness": w, "line": line}
                    for w, line in lines
                ],
            )

    def cosignatures(self, tree_size: int, root_hash: bytes) -> list[str]:
        c = cosignatures_table.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(c.witness, c.line)
                .where(c.tree_size == tree_size, c.root_hash == root_hash)
                .order_by(c.id)
            ).all()
        seen: dict[str, str] = {}
        for witness, line in rows:
            seen.setdefault(witness, line)  # one line a witness: its first cosignature
        return list(seen.values())

    def meta(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(meta_table.c.key, meta_table.c.value)).all()
        return {k: v for k, v in rows}

    def init_meta(self, values: dict[str, str]) -> dict[str, str]:
        """Record ``values`` for the keys not yet set (the first initialisation wins); return
        what the store holds afterwards."""
        with self.engine.begin() as conn:
            have = {k for (k,) in conn.execute(select(meta_table.c.key))}
            missing = [{"key": k, "value": v} for k, v in values.items() if k not in have]
            if missing:
                conn.execute(insert(meta_table), missing)
        return self.meta()

    def checkpoints(self) -> list[StoredCheckpoint]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(checkpoints_table).order_by(
                    checkpoints_table.c.tree_size, checkpoints_table.c.id
                )
            )
            return [_row_checkpoint(r) for r in rows]

    def nodes(self, min_level: int = 1, *, chunk: int = 50000) -> Iterator[tuple[int, int, bytes]]:
        """Stored complete-subtree hashes at ``min_level`` and above (exports carry them)."""
        last = (min_level << LEVEL_SHIFT) - 1
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(nodes_table.c.id, nodes_table.c.hash)
                    .where(nodes_table.c.id > last)
                    .order_by(nodes_table.c.id)
                    .limit(chunk)
                ).all()
            if not rows:
                return
            for r in rows:
                level, index = node_key(r.id)
                yield level, index, bytes(r.hash)
            last = rows[-1].id

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.exec_driver_sql(_READ_HEAD).one()
