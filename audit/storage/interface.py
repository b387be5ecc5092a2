"""What the log needs from a store: the narrow interface its semantics are written against.

As in Trillian and Tessera, log semantics (sequencing, the tree, checkpoints, proofs; see
``audit.log``) sit above this seam. A store's one hard duty is :meth:`LogStorage.sequencer`: an
exclusive, cross-process critical section in which the tree head is read and the next batch of
leaves is written, so that every worker process on every host sees one total order without gaps
or duplicates. Rows are append-only. A store raises :class:`audit.errors.StoreUnavailable` when
its database fails, never its driver's own errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from audit.merkle import NodeKey


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
    official: str | None = None
    court_order: str | None = None


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
    # A family of actions by the prefix of their names (``security.`` for security events).
    action_prefix: str | None = None
    outcome: str | None = None
    subject: str | None = None
    official: str | None = None
    court_order: str | None = None
    since_ns: int | None = None
    until_ns: int | None = None


class Sequencer(Protocol):
    """The inside of the exclusive section: the head as of now, and one atomic write."""

    tree_size: int
    root_hash: bytes
    # The complete-subtree hashes whose fold is root_hash (merkle.CompactRange), kept with the
    # head so that an append reads no node; written with every head.
    right_edge: tuple[bytes, ...]

    def read_nodes(self, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]: ...

    def write(
        self,
        entries: Sequence[StoredEntry],
        nodes: Sequence[tuple[int, int, bytes]],
        tree_size: int,
        root_hash: bytes,
        right_edge: Sequence[bytes],
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
