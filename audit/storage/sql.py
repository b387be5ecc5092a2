"""The audit store on SQLite and PostgreSQL, one code path for both, through ``storekit``.

The sequencer's exclusive section is a transaction that reads the tree head ``FOR UPDATE``:
PostgreSQL locks the head row (waiting at most :data:`LOCK_TIMEOUT_S`, then the append fails
closed), SQLite begins ``IMMEDIATE`` and so holds the database-wide write lock before it reads.
The hot reads (the head, proof nodes) and the sequencer run on ``storekit.HotSQL``; listings and
exports, which build their statements per call, on SQLAlchemy connections. Every driver error
leaves here as :class:`audit.errors.StoreUnavailable`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from audit.errors import StoreUnavailable
from audit.merkle import NodeKey
from audit.storage.interface import EntryFilter, StoredCheckpoint, StoredEntry
from audit.storage.tables import (
    LEVEL_SHIFT,
    SUBJECT_SEGMENT,
    checkpoints_table,
    cosignatures_table,
    entries_table,
    head_table,
    meta_table,
    node_id,
    node_key,
    nodes_table,
    pack_edge,
    unpack_edge,
)
from storekit import HotSQL, Transaction
from storekit.bulk import insert_columns

# What a SQL store is opened on (``audit.log`` names it without importing SQLAlchemy).
SqlEngine = Engine
SEGMENTS_A_STATEMENT = 64  # a subject listing searches this many segments a statement
LOCK_TIMEOUT_S = 10  # PostgreSQL: longest wait for the tree-head lock (SQLite: busy_timeout)

HEAD = select(head_table.c.tree_size, head_table.c.root_hash).where(head_table.c.id == 1)
# The sequencer's first round trip: BEGIN, the lock and the head with the tree's right edge.
LOCKED_HEAD = (
    select(head_table.c.tree_size, head_table.c.root_hash, head_table.c.right_edge)
    .where(head_table.c.id == 1)
    .with_for_update()
)
SET_HEAD = (
    update(head_table)
    .where(head_table.c.id == 1)
    .values(
        tree_size=bindparam("tree_size"),
        root_hash=bindparam("root_hash"),
        right_edge=bindparam("right_edge"),
    )
)
ADD_CHECKPOINT = insert(checkpoints_table).values(
    tree_size=bindparam("tree_size"),
    root_hash=bindparam("root_hash"),
    timestamp_ns=bindparam("timestamp_ns"),
    note=bindparam("note"),
)


@contextmanager
def store_errors() -> Iterator[None]:
    """SQLAlchemy's and the driver's errors raised inside, as :class:`StoreUnavailable`."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise StoreUnavailable(f"the audit store failed ({type(exc).__name__})") from exc


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
        official=row.official,
        court_order=row.court_order,
    )


def _row_checkpoint(row: Any) -> StoredCheckpoint:
    return StoredCheckpoint(row.tree_size, bytes(row.root_hash), row.timestamp_ns, row.note)


def _entry_tuple(e: StoredEntry) -> tuple[Any, ...]:
    return (e.index, e.leaf_hash, e.entry.decode(), *e[3:])


class _SqlSequencer:
    """Inside the head's lock. On the store's own transaction, two round trips in all: the
    BEGIN with the locked head read (edge included), then the batch's writes with the COMMIT;
    the lock is held from the first's arrival at the server to the second's."""

    def __init__(self, storage: SqlStorage, tx: Transaction, *, owned: bool) -> None:
        self._storage = storage
        self._tx = tx
        self._owned = owned
        row = tx.opening_row if owned else tx.one(LOCKED_HEAD)
        if row is None:
            raise LookupError("the audit store has no tree head (run the migrations)")
        self.tree_size = int(row[0])
        self.root_hash = bytes(row[1])
        self.right_edge = unpack_edge(row[2])

    def read_nodes(self, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
        return self._storage._nodes_on(self._tx, keys)

    def write(
        self,
        entries: Sequence[StoredEntry],
        nodes: Sequence[tuple[int, int, bytes]],
        tree_size: int,
        root_hash: bytes,
        right_edge: Sequence[bytes],
        checkpoint: StoredCheckpoint | None,
    ) -> None:
        """The whole batch in one network round trip, one statement a table, with the COMMIT
        when the transaction is the store's own (a caller's transaction is the caller's to
        commit). Nothing may follow it in the sequencer's block."""
        tx = self._tx
        with tx.pipeline():
            insert_columns(tx, entries_table, [_entry_tuple(e) for e in entries])
            insert_columns(
                tx, nodes_table, [(node_id((level, index)), h) for level, index, h in nodes]
            )
            tx.send(
                SET_HEAD,
                tree_size=tree_size,
                root_hash=root_hash,
                right_edge=pack_edge(right_edge),
            )
            if checkpoint is not None:
                tx.send(ADD_CHECKPOINT, **_checkpoint_params(checkpoint))
            if self._owned:
                tx.commit()


def _checkpoint_params(cp: StoredCheckpoint) -> dict[str, Any]:
    return {
        "tree_size": cp.tree_size,
        "root_hash": cp.root_hash,
        "timestamp_ns": cp.timestamp_ns,
        "note": cp.note,
    }


class SqlStorage:
    """The audit store in a SQL database (:class:`audit.storage.LogStorage`)."""

    # Entries a segment of the subject index. A listing by subject is correct whatever the
    # value; only SUBJECT_SEGMENT, the migration's, lets the database use the index.
    subject_segment = SUBJECT_SEGMENT

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Its own runner: durable commits and a bounded wait for the head lock are the audit
        # store's promises, not every room's.
        self._hot = HotSQL(engine, keep=4, durable=True, lock_timeout_s=LOCK_TIMEOUT_S)
        # One batch per process at a time; the head lock orders processes.
        self._writer_lock = threading.Lock()
        n = nodes_table.c
        self._read_nodes = select(n.id, n.hash).where(self._hot.among(n.id, "ids"))

    def close(self) -> None:
        self._hot.close()

    # -- the sequencer -------------------------------------------------------------------------

    @contextmanager
    def sequencer(self, transaction: Connection | None = None) -> Iterator[_SqlSequencer]:
        """The exclusive section of an append: the head locked and read, the batch written,
        committed. In ``transaction`` (a connection to this store's database with a write
        transaction open, made by ``storekit.durable_writer``) the caller commits or rolls
        back, and the entries are as durable as its commit."""
        with store_errors():
            if transaction is not None:
                yield _SqlSequencer(self, Transaction.of(transaction), owned=False)
                return
            with self._writer_lock, self._hot.begin(immediate=True, opening=LOCKED_HEAD) as tx:
                yield _SqlSequencer(self, tx, owned=True)

    def _nodes_on(self, tx: Transaction, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
        ids = [node_id(k) for k in keys]
        if not ids:
            return {}
        rows = tx.all(self._read_nodes, ids=self._hot.listed(ids))
        return {node_key(r[0]): bytes(r[1]) for r in rows}

    # -- hot reads -----------------------------------------------------------------------------

    def head(self) -> tuple[int, bytes]:
        with store_errors():
            row = self._hot.one(HEAD)
        if row is None:
            raise LookupError("the audit store has no tree head (run the migrations)")
        return int(row[0]), bytes(row[1])

    def read_nodes(self, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
        ids = [node_id(k) for k in keys]
        if not ids:
            return {}
        with store_errors():
            rows = self._hot.all(self._read_nodes, ids=self._hot.listed(ids))
        return {node_key(r[0]): bytes(r[1]) for r in rows}

    def ping(self) -> None:
        self.head()

    # -- listings and exports ------------------------------------------------------------------

    def entries(self, start: int, end: int, *, chunk: int = 5000) -> Iterator[StoredEntry]:
        """Rows with ``start <= idx < end`` in index order, read in chunks (exports, verify)."""
        pos = start
        while pos < end:
            with store_errors(), self.engine.connect() as conn:
                rows = conn.execute(
                    select(entries_table)
                    .where(entries_table.c.idx >= pos, entries_table.c.idx < min(end, pos + chunk))
                    .order_by(entries_table.c.idx)
                ).all()
            yield from (_row_entry(r) for r in rows)
            pos += chunk

    def entry(self, index: int) -> StoredEntry | None:
        with store_errors(), self.engine.connect() as conn:
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
            (c.official, where.official),
            (c.court_order, where.court_order),
            (c.purpose, where.purpose),
            (c.action, where.action),
            (c.outcome, where.outcome),
        ):
            if value is not None:
                conds.append(column == value)
        if where.action_prefix is not None:
            conds.append(c.action.startswith(where.action_prefix, autoescape=True))
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
        with store_errors(), self.engine.connect() as conn:
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
        size = conn.execute(HEAD).one()[0]
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
        with store_errors(), self.engine.connect() as conn:
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

    def nodes(self, min_level: int = 1, *, chunk: int = 50000) -> Iterator[tuple[int, int, bytes]]:
        """Stored complete-subtree hashes at ``min_level`` and above (exports carry them)."""
        last = (min_level << LEVEL_SHIFT) - 1
        while True:
            with store_errors(), self.engine.connect() as conn:
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

    # -- checkpoints, cosignatures, metadata ---------------------------------------------------

    def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        with store_errors(), self._hot.begin() as tx:
            tx.send(ADD_CHECKPOINT, **_checkpoint_params(checkpoint))

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
        with store_errors(), self.engine.connect() as conn:
            # Largest tree first: processes may store checkpoints out of id order.
            row = conn.execute(
                query.order_by(t.c.tree_size.desc(), t.c.id.desc()).limit(1)
            ).one_or_none()
        return _row_checkpoint(row) if row is not None else None

    def checkpoints(self) -> list[StoredCheckpoint]:
        with store_errors(), self.engine.connect() as conn:
            rows = conn.execute(
                select(checkpoints_table).order_by(
                    checkpoints_table.c.tree_size, checkpoints_table.c.id
                )
            )
            return [_row_checkpoint(r) for r in rows]

    def add_cosignatures(
        self, tree_size: int, root_hash: bytes, lines: Sequence[tuple[str, str]]
    ) -> None:
        """Store witnesses' cosignature lines (``(witness name, line)``) for one checkpoint."""
        if not lines:
            return
        with store_errors(), self.engine.begin() as conn:
            conn.execute(
                insert(cosignatures_table),
                [
                    {"tree_size": tree_size, "root_hash": root_hash, "witness": w, "line": line}
                    for w, line in lines
                ],
            )

    def cosignatures(self, tree_size: int, root_hash: bytes) -> list[str]:
        c = cosignatures_table.c
        with store_errors(), self.engine.connect() as conn:
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
        with store_errors(), self.engine.connect() as conn:
            rows = conn.execute(select(meta_table.c.key, meta_table.c.value)).all()
        return {k: v for k, v in rows}

    def init_meta(self, values: dict[str, str]) -> dict[str, str]:
        """Record ``values`` for the keys not yet set (the first initialisation wins); return
        what the store holds afterwards."""
        with store_errors(), self.engine.begin() as conn:
            have = {k for (k,) in conn.execute(select(meta_table.c.key))}
            missing = [{"key": k, "value": v} for k, v in values.items() if k not in have]
            if missing:
                conn.execute(insert(meta_table), missing)
        return self.meta()
