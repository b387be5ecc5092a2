"""Log semantics: sequencing with group commit, the tree, checkpoints, proofs, receipts.

Written against :class:`audit.storage.LogStorage`; nothing here knows SQL. The signer's guard
is :mod:`audit.guard`, entry preparation :mod:`audit.template`, the export :mod:`audit.export`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from audit.checkpoint import Checkpoint, NoteSigner, open_checkpoint
from audit.cosignature import with_signature_lines
from audit.entry import AppendReceipt, AuditEntry
from audit.errors import (
    AuditUnavailable,
    CheckpointRefused,
    InvalidProof,
    NotYetCheckpointed,
    StoreUnavailable,
)
from audit.export import (
    ConsistencyProof,
    InclusionProof,
    LoggedEntry,
    export_lines,
)
from audit.guard import Heads, LogIdentity, SignerGuard
from audit.memory import HeadMemory, TreeHead
from audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    NodeKey,
    consistency_ranges,
    hashes_for,
    inclusion_ranges,
)
from audit.storage import (
    EntryFilter,
    LogStorage,
    Sequencer,
    SqlStorage,
    StoredCheckpoint,
    StoredEntry,
)
from audit.storage.sql import SqlEngine
from audit.template import prepare_entry

_STORE_ERRORS = (StoreUnavailable, LookupError, OSError)


class _Pending:
    __slots__ = ("done", "error", "receipt", "row", "wake")

    def __init__(self, row: StoredEntry, wake: threading.Event | None = None) -> None:
        self.row = row
        # Set when done, or when promoted to leader. append_many's entries are never queued,
        # so nobody waits on them: they share one event instead of building one each.
        self.wake = wake or threading.Event()
        self.done = False
        self.receipt: AppendReceipt | None = None
        self.error: BaseException | None = None


_UNQUEUED = threading.Event()


class AuditLog:
    """The tamper-evident audit log.

    ``append`` is safe from many threads and many processes. Concurrent callers in one process
    are batched into one transaction (group commit, leader/follower: the first waiter writes
    everyone's entries, the others sleep until their batch has committed), so the cost of a
    durable commit is shared. Every caller returns only once its entry is committed, and
    raises :class:`AuditUnavailable` if it was not.
    """

    def __init__(
        self,
        storage: LogStorage,
        signer: NoteSigner | None,
        origin: str | None,
        *,
        checkpoint_every_entries: int = 1000,
        checkpoint_every_seconds: float = 1.0,
        clock: Callable[[], int] = time.time_ns,
        max_batch: int = 5000,
        node_cache_size: int = 1 << 16,
        memory: HeadMemory | None = None,
        alarm: Callable[[str], None] | None = None,
        witnesses_expected: int = 0,
        identity: Callable[[], LogIdentity] | None = None,
    ) -> None:
        self.storage = storage
        # Either given, or read from the store on first use (``identity``): a gateway starts
        # while its database is down, and the log's name and key live in that database.
        self._identity: LogIdentity | None = (
            LogIdentity(signer, origin, memory) if signer is not None and origin else None
        )
        self._identify = identity
        self._identity_lock = threading.Lock()
        self.every_entries = checkpoint_every_entries
        self.every_ns = int(checkpoint_every_seconds * 1e9)
        self.clock = clock
        self.witnesses_expected = witnesses_expected
        self.guard = SignerGuard(storage, self._bound, alarm)
        # Wakes the checkpointer: a batch crossed checkpoint_every_entries, or a reader waits.
        self.grew = threading.Event()
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._writing = False
        self._last_checkpoint_ns: int | None = None
        self._nodes: dict[NodeKey, bytes] = {}
        self._node_cache_size = node_cache_size
        self._node_lock = threading.Lock()

    def _bound(self) -> LogIdentity:
        identity = self._identity
        if identity is not None:
            return identity
        with self._identity_lock:
            if self._identity is None:
                assert self._identify is not None, "an AuditLog needs a signer or an identity"
                try:
                    self._identity = self._identify()
                except _STORE_ERRORS as exc:
                    raise AuditUnavailable("the audit store is unreachable") from exc
            return self._identity

    def bind(self) -> None:
        """Know who the log is now (recording origin and key in a store that has neither) rather
        than at the first append. A caller that appends inside its own transaction binds first:
        on SQLite that record would wait for the write lock the caller's transaction holds."""
        self._bound()

    @property
    def signer(self) -> NoteSigner:
        return self._bound().signer

    @property
    def origin(self) -> str:
        return self._bound().origin

    @property
    def memory(self) -> HeadMemory | None:
        """Outside the store: what was signed and written before (audit.memory). The signer
        also remembers, in this process, the newest head it wrote or signed itself."""
        return self._bound().memory

    @property
    def alarm(self) -> Callable[[str], None] | None:
        """Told each problem the signer finds (a critical log line, a metric)."""
        return self.guard.alarm

    @alarm.setter
    def alarm(self, alarm: Callable[[str], None] | None) -> None:
        self.guard.alarm = alarm

    @property
    def refused(self) -> str | None:
        """Why the signer refuses, once it does: the log then fails closed."""
        return self.guard.refused

    def flush_memory(self) -> None:
        """Write the batches' heads not yet in the signer's memory."""
        self.guard.flush_memory()

    def trusted_heads(self) -> list[tuple[str, TreeHead]]:
        """What the store's tree must extend (:meth:`SignerGuard.trusted_heads`)."""
        return self.guard.trusted_heads()

    def check_store(self) -> None:
        """Hold the store's current tree to every trusted head (at start, before appending);
        raise :class:`CheckpointRefused`, and refuse from then on, if it is not consistent."""
        self.guard.check_not_refused()
        try:
            size, root = self.storage.head()
            self.guard.hold(self.storage.read_nodes, size, root)
        except CheckpointRefused:
            raise
        except _STORE_ERRORS as exc:
            raise AuditUnavailable("the audit store is unreachable") from exc

    @classmethod
    def for_engine(
        cls, engine: SqlEngine, signer: NoteSigner, origin: str, **options: Any
    ) -> AuditLog:
        return cls(SqlStorage(engine), signer, origin, **options)

    @property
    def verifier_key(self) -> str:
        return str(self.signer.verifier)

    # -- appending ---------------------------------------------------------------------------

    def append(self, entry: AuditEntry) -> AppendReceipt:
        """Append durably; the receipt names the entry's place in the one total order."""
        self.guard.check_not_refused()
        pending = _Pending(prepare_entry(entry))
        with self._lock:
            self._queue.append(pending)
            leader = not self._writing
            self._writing = True
        if not leader:
            pending.wake.wait()
        if not pending.done:
            # Leader (first in line, or promoted by the previous leader): our entry is at the
            # head of the queue, so it is in this batch.
            with self._lock:
                batch = self._queue[: self.max_batch]
                del self._queue[: len(batch)]
            heads: Heads = (None, None)
            try:
                heads = self._write_batch(batch)
            finally:
                for p in batch:
                    if p.receipt is None and p.error is None:
                        p.error = RuntimeError("the batch was interrupted")
                    p.done = True
                    p.wake.set()
                with self._lock:
                    if self._queue:
                        self._queue[0].wake.set()  # hand the pen to the next in line
                    else:
                        self._writing = False
            # Off the sequencer's path: the next batch is already being written.
            self.guard.remember(heads)
        if pending.error is not None:
            raise AuditUnavailable("the audit log could not record the entry") from pending.error
        assert pending.receipt is not None
        return pending.receipt

    def append_many(
        self,
        entries: Iterable[AuditEntry | StoredEntry],
        *,
        write_guard: AbstractContextManager[Any] | None = None,
        transaction: Any = None,
    ) -> list[AppendReceipt]:
        """Append a batch in one transaction (imports, rescoring); same guarantees.

        ``entries`` may come already serialised (:func:`prepare_entry`). ``write_guard`` (e.g.
        a lock the caller's worker processes share) is held around the sequencer's
        transaction only; the entries are serialised and hashed before it.

        ``transaction``: append inside a transaction the caller holds open on the audit
        store's database (a SQLAlchemy connection; see :meth:`SqlStorage.sequencer`), so that
        the entries commit together with the caller's own writes, or not at all. The entries
        are durable only once the caller has committed; the receipts say where they will be.
        """
        self.guard.check_not_refused()
        batch = [
            _Pending(e if isinstance(e, StoredEntry) else prepare_entry(e), _UNQUEUED)
            for e in entries
        ]
        with write_guard or nullcontext():
            heads = self._write_batch(batch, transaction)
        self.guard.remember(heads)
        for p in batch:
            if p.error is not None:
                raise AuditUnavailable("the audit log could not record the entries") from p.error
        return [p.receipt for p in batch if p.receipt is not None]

    def _write_batch(self, batch: Sequence[_Pending], transaction: Any = None) -> Heads:
        """Write ``batch``; return the heads the signer is to remember (written, signed)."""
        try:
            self._bound()  # before the sequencer's lock: binding may write the store's metadata
            with self.storage.sequencer(transaction) as seq:
                frontier = self._load_frontier(seq)
                rows: list[StoredEntry] = []
                nodes: list[tuple[int, int, bytes]] = []
                receipts: list[AppendReceipt] = []
                for p in batch:
                    leaf = p.row.leaf_hash
                    index = frontier.size
                    nodes.extend(frontier.append(leaf))
                    rows.append(StoredEntry(index, *p.row[1:]))
                    receipts.append(AppendReceipt(index, leaf))
                root = frontier.root()
                # Never inside a caller's transaction: it may roll back a checkpoint that the
                # signer would already remember.
                checkpoint = (
                    self._due_checkpoint(seq, frontier.size, root) if transaction is None else None
                )
                seq.write(rows, nodes, frontier.size, root, frontier.hashes(), checkpoint)
        except Exception as exc:  # fail closed: whatever went wrong, nothing was recorded
            for p in batch:
                p.error = exc
                p.done = True
            return None, None
        written = signed = None
        if transaction is None:
            written = TreeHead(frontier.size, root)
            if frontier.size // self.every_entries > seq.tree_size // self.every_entries:
                self.grew.set()
        if checkpoint is not None:
            self._last_checkpoint_ns = checkpoint.timestamp_ns
            signed = TreeHead(checkpoint.tree_size, root, checkpoint.note)
        for p, receipt in zip(batch, receipts, strict=True):
            p.receipt = receipt
            p.done = True
        return written, signed

    @staticmethod
    def _load_frontier(seq: Sequencer) -> CompactRange:
        """The tree's right edge, as the locked head holds it (whichever process wrote last):
        no node is read under the lock. An edge that does not fold to the head's root is never
        extended."""
        try:
            frontier = CompactRange(seq.tree_size, seq.right_edge)
        except ValueError:
            raise LookupError("the stored tree edge does not fit the tree head") from None
        if frontier.root() != seq.root_hash:
            raise LookupError("the stored tree edge does not match the tree head")
        return frontier

    def _due_checkpoint(
        self, seq: Sequencer, new_size: int, root: bytes
    ) -> StoredCheckpoint | None:
        now = self.clock()
        if self._last_checkpoint_ns is None:
            latest = self.storage.latest_checkpoint()
            self._last_checkpoint_ns = latest.timestamp_ns if latest else 0
        old_size = seq.tree_size
        crossed = new_size // self.every_entries > old_size // self.every_entries
        stale = now - self._last_checkpoint_ns >= self.every_ns
        if not (crossed or stale):
            return None
        # The batch extends the store's head by construction; the head itself must extend
        # whatever was signed or written before.
        self.guard.hold(seq.read_nodes, old_size, seq.root_hash)
        cp = self.signer.sign(self.origin, new_size, root, now)
        return StoredCheckpoint(cp.tree_size, cp.root_hash, now, cp.note)

    # -- reading -----------------------------------------------------------------------------

    def head(self) -> tuple[int, bytes]:
        try:
            return self.storage.head()
        except _STORE_ERRORS as exc:
            raise AuditUnavailable("the audit store is unreachable") from exc

    def size(self) -> int:
        return self.head()[0]

    def _read(self, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
        """Nodes of complete subtrees never change once written, so caching them is exact."""
        keys = set(keys)
        with self._node_lock:
            found = {k: self._nodes[k] for k in keys if k in self._nodes}
        missing = keys - set(found)
        if missing:
            fetched = self.storage.read_nodes(missing)
            found.update(fetched)
            with self._node_lock:
                if len(self._nodes) + len(fetched) > self._node_cache_size:
                    self._nodes.clear()
                self._nodes.update(fetched)
        return found

    def _size_or(self, tree_size: int | None) -> int:
        """The requested size, or the current one. A requested size is not checked against the
        head here (that would cost a read a proof): the nodes it needs exist only if the tree
        has grown that far, and :meth:`_hashes` tells the two cases apart when one is missing.
        """
        if tree_size is None:
            return self.size()
        if tree_size < 0:
            raise InvalidProof("tree size must not be negative")
        return tree_size

    def _hashes(self, ranges: list[tuple[int, int]], tree_size: int) -> list[bytes]:
        try:
            return hashes_for(ranges, self._read)
        except LookupError:
            if tree_size > self.size():
                raise InvalidProof("tree size is larger than the log") from None
            raise AuditUnavailable("the audit store is missing tree nodes") from None
        except _STORE_ERRORS as exc:
            raise AuditUnavailable("the audit store is unreachable") from exc

    def root(self, tree_size: int | None = None) -> bytes:
        size = self._size_or(tree_size)
        return self._hashes([(0, size)], size)[0] if size else EMPTY_ROOT

    def inclusion_proof(self, index: int, tree_size: int | None = None) -> InclusionProof:
        """RFC 9162 §2.1.3.1 audit path for leaf ``index`` in the tree of ``tree_size``."""
        size = self._size_or(tree_size)
        if not 0 <= index < size:
            raise InvalidProof("leaf index must be below the tree size")
        hashes = self._hashes([(index, index + 1), *inclusion_ranges(index, size)], size)
        return InclusionProof(index, size, hashes[0], hashes[1:])

    def consistency_proof(self, first: int, second: int | None = None) -> ConsistencyProof:
        """RFC 9162 §2.1.4.1 proof that tree ``second`` extends tree ``first``."""
        size = self._size_or(second)
        if not 0 <= first <= size:
            raise InvalidProof("first must be between 0 and second")
        ranges = consistency_ranges(first, size)
        # Even an empty proof must not vouch for a size the log never reached.
        proof = self._hashes(ranges or [(0, size)], size)
        return ConsistencyProof(first, size, proof if ranges else [])

    # -- checkpoints -------------------------------------------------------------------------

    def issue_checkpoint(self) -> Checkpoint:
        """Sign and store a checkpoint of the store's tree, once the store has proven that
        tree consistent with every trusted head (:meth:`trusted_heads`); refuse for good
        (:class:`CheckpointRefused`) otherwise.

        The writer side calls this (the gateway's checkpointer, its start and shutdown, the
        command line); a read never signs."""
        cp = self._sign(only_if_grown=False)
        assert cp is not None
        return cp

    def checkpoint_if_grown(self) -> Checkpoint | None:
        """:meth:`issue_checkpoint`, unless the newest stored checkpoint already covers the
        tree (then None): the checkpointer's tick, safe to run in every worker process."""
        return self._sign(only_if_grown=True)

    def _sign(self, *, only_if_grown: bool) -> Checkpoint | None:
        self.guard.check_not_refused()
        self._bound()
        try:
            with self.storage.sequencer() as seq:
                size, root = seq.tree_size, seq.root_hash
                if only_if_grown:
                    latest = self.storage.latest_checkpoint()
                    if latest is not None and latest.tree_size >= size:
                        return None
                self.guard.hold(seq.read_nodes, size, root)
                now = self.clock()
                cp = self.signer.sign(self.origin, size, root, now)
                checkpoint = StoredCheckpoint(size, root, now, cp.note)
                seq.write([], [], size, root, seq.right_edge, checkpoint)
        except CheckpointRefused:
            raise
        except _STORE_ERRORS as exc:
            raise AuditUnavailable("the audit store is unreachable") from exc
        self._last_checkpoint_ns = now
        self.guard.remember_head("signed", TreeHead(size, root, cp.note))
        return cp

    def checkpoint(self, *, min_size: int = 0, wait_s: float = 0.0) -> Checkpoint:
        """The newest signed checkpoint covering at least ``min_size`` entries, with the
        witnesses' cosignatures gathered for it. Never signs: if none covers ``min_size`` within
        ``wait_s`` seconds (the checkpointer signs at least every checkpoint interval), raise
        :class:`NotYetCheckpointed`. While witnesses are expected, a checkpoint they have all
        cosigned is preferred, waited for as long, and an uncosigned one taken after that."""
        deadline = time.monotonic() + wait_s
        woken = False
        try:
            while True:
                latest = self.storage.latest_checkpoint(min_size, self.witnesses_expected)
                if latest is None and self.witnesses_expected and time.monotonic() >= deadline:
                    latest = self.storage.latest_checkpoint(min_size)
                if latest is not None:
                    break
                if time.monotonic() >= deadline:
                    raise NotYetCheckpointed(
                        "no signed checkpoint covers that entry yet; ask again in a second"
                    )
                if not woken:
                    # Ask the writer side's checkpointer to sign now rather than at its next
                    # tick (the read itself never signs).
                    self.grew.set()
                    woken = True
                time.sleep(0.02)
            lines = self.storage.cosignatures(latest.tree_size, latest.root_hash)
        except _STORE_ERRORS as exc:
            raise AuditUnavailable("the audit store is unreachable") from exc
        note = with_signature_lines(latest.note, lines)
        return open_checkpoint(note, self.signer.verifier, self.origin)

    def add_cosignatures(self, checkpoint: Checkpoint, lines: Sequence[tuple[str, str]]) -> None:
        """Keep witnesses' cosignature lines (``(witness name, line)``, already verified by
        the caller) for ``checkpoint``."""
        try:
            self.storage.add_cosignatures(checkpoint.tree_size, checkpoint.root_hash, lines)
        except _STORE_ERRORS as exc:
            raise AuditUnavailable("the audit store is unreachable") from exc

    def checkpoints(self) -> list[Checkpoint]:
        try:
            stored = self.storage.checkpoints()
        except _STORE_ERRORS as exc:
            raise AuditUnavailable("the audit store is unreachable") from exc
        return [open_checkpoint(c.note, self.signer.verifier) for c in stored]

    # -- listings, receipts, export ----------------------------------------------------------

    def entries(
        self,
        where: EntryFilter | None = None,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> list[LoggedEntry]:
        """Entries matching ``where``: ascending after ``after``, or newest first below
        ``before`` (keyset pagination: stable while the log grows)."""
        try:
            rows = self.storage.find(
                where or EntryFilter(), after=after, before=before, limit=limit
            )
        except _STORE_ERRORS as exc:
            raise AuditUnavailable("the audit store is unreachable") from exc
        return [
            LoggedEntry(r.index, r.leaf_hash, AuditEntry.from_canonical(r.entry), r.entry)
            for r in rows
        ]

    def entry(self, index: int) -> LoggedEntry | None:
        try:
            row = self.storage.entry(index)
        except _STORE_ERRORS as exc:
            raise AuditUnavailable("the audit store is unreachable") from exc
        if row is None:
            return None
        return LoggedEntry(
            row.index, row.leaf_hash, AuditEntry.from_canonical(row.entry), row.entry
        )

    def stats(self, since_ns: int | None = None, until_ns: int | None = None) -> dict[str, Any]:
        try:
            size, root = self.storage.head()
            groups = self.storage.stats(since_ns, until_ns)
        except _STORE_ERRORS as exc:
            raise AuditUnavailable("the audit store is unreachable") from exc
        by_outcome: dict[str, int] = {}
        for g in groups:
            by_outcome[g["outcome"]] = by_outcome.get(g["outcome"], 0) + g["count"]
        return {
            "tree_size": size,
            "root_hash": root.hex(),
            "by_outcome": by_outcome,
            "groups": groups,
        }

    def receipt(self, index: int, *, wait_s: float = 0.0) -> dict[str, Any]:
        """Entry + inclusion proof + checkpoint (with the witnesses' cosignatures) + verifier
        key: checkable offline (:func:`audit.verify.verify_receipt`) by anyone, with no access
        to this service. An entry in the unsigned tail waits up to ``wait_s`` for the
        checkpointer (:class:`NotYetCheckpointed` after that)."""
        logged = self.entry(index)
        if logged is None:
            raise InvalidProof("no entry at that index")
        cp = self.checkpoint(min_size=index + 1, wait_s=wait_s)
        proof = self.inclusion_proof(index, cp.tree_size)
        return {
            "format": "sijill-audit-receipt/1",
            "entry": logged.canonical.decode(),
            **proof.to_json(),
            "checkpoint": cp.note,
            "verifier_key": self.verifier_key,
        }

    def export_lines(self) -> Iterator[str]:
        """The whole log as JSON Lines: header, entries, complete-subtree nodes, checkpoints."""
        return export_lines(self.storage, self.origin, self.verifier_key)

    def close(self) -> None:
        """Release the store's long-lived connections (the app closes it at shutdown)."""
        if self._identity is not None:
            self.flush_memory()
        self.storage.close()

    def ping(self) -> None:
        self.guard.check_not_refused()  # readiness: a refusing log is not ready
        try:
            self.storage.ping()
        except _STORE_ERRORS as exc:
            raise AuditUnavailable("the audit store is unreachable") from exc
