"""What the checkpoint signer remembers outside the audit store.

Anyone who can write the audit database can rebuild its entries, tree nodes and head so that
they agree with each other, and delete the checkpoints that would contradict them. The signer
must therefore not learn from that database what it signed before: it keeps, elsewhere, the
latest checkpoint it signed and the latest tree head the log committed, and signs a tree only
once the store proves it consistent with both (RFC 9162 §2.1.4 consistency proof). Tessera's
and Trillian's signers keep their last checkpoint the same way, for the same reason.

Two places are used together, and the larger of what they hold wins:

- :class:`FileMemory`: a JSON file in the data directory (owner-only), replaced atomically under
  an exclusive lock so that concurrent writers never move it backwards. The tree head is written
  after every committed batch (so an unsigned tail is protected too); a signed checkpoint is
  also fsynced.
- :class:`SqlMemory`: a row in the main database (``audit_signer_state``), for deployments
  whose gateway hosts each have their own data directory. It holds signed checkpoints only.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import (
    Engine,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from audit.storage.sql import store_errors
from audit.storage.tables import signer_state_table

RECENT = 64  # written heads a FileMemory keeps (FileMemory.recent)


@dataclass(frozen=True)
class TreeHead:
    """A tree size and root the log has vouched for: signed, or written by its own writer."""

    size: int
    root: bytes
    note: str | None = None  # the signed note, for a signed checkpoint


@dataclass(frozen=True)
class TrustedHead:
    """A tree size and root known from outside the store: a checkpoint a witness cosigned or a
    citizen kept, the signer's own memory. A verifier holds the log to it."""

    label: str
    size: int
    root: bytes
    checkpoint: bool = True  # a signed checkpoint, which the store must also still hold


def remembered_heads(memory: HeadMemory) -> list[TrustedHead]:
    """What a signer's memory holds, as heads a verifier holds the store to."""
    heads: list[TrustedHead] = []
    signed = memory.signed()
    if signed is not None:
        label = f"the checkpoint the signer last signed (size {signed.size})"
        heads.append(TrustedHead(label, signed.size, signed.root))
    recent = memory.recent() if isinstance(memory, FileMemory) else []
    written = memory.written()
    for head in [*recent, *([written] if written is not None else [])]:
        label = f"a tree head the log wrote (size {head.size})"
        heads.append(TrustedHead(label, head.size, head.root, checkpoint=False))
    return heads


class HeadMemory(Protocol):
    """A place outside the audit store that keeps the latest heads, never moving backwards."""

    def signed(self) -> TreeHead | None: ...

    def written(self) -> TreeHead | None: ...

    def remember_signed(self, head: TreeHead) -> None: ...

    def remember_written(self, heads: Sequence[TreeHead]) -> None:
        """Keep the heads of committed batches, oldest first (the newest is the written one)."""
        ...


def _head_json(head: TreeHead) -> dict[str, Any]:
    out: dict[str, Any] = {"size": head.size, "root": base64.b64encode(head.root).decode()}
    if head.note is not None:
        out["note"] = head.note
    return out


def _head_of(obj: Any) -> TreeHead | None:
    if not isinstance(obj, dict):
        return None
    root = base64.b64decode(str(obj["root"]), validate=True)
    return TreeHead(int(obj["size"]), root, obj.get("note"))


class FileMemory:
    """``<data dir>/audit/signer-state.json``: the latest signed checkpoint and written head."""

    def __init__(self, path: Path, origin: str) -> None:
        self.path = Path(path)
        self.origin = origin
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    @classmethod
    def read_only(cls, path: Path) -> dict[str, Any] | None:
        """The file's content, for a verifier: None if there is none (nothing is created)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return data if isinstance(data, dict) else None

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"origin": self.origin}
        if not isinstance(data, dict) or data.get("origin") != self.origin:
            raise ValueError(f"{self.path} is not this log's signer state")
        return data

    def signed(self) -> TreeHead | None:
        return _head_of(self._read().get("signed"))

    def written(self) -> TreeHead | None:
        return _head_of(self._read().get("written"))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def recent(self) -> list[TreeHead]:
        """The last :data:`RECENT` heads written (one a committed batch), oldest first: they
        let a verifier name the batch of the unsigned tail that was altered."""
        heads = (_head_of(h) for h in self._read().get("recent", []))
        return [h for h in heads if h is not None]

    def _advance(self, kind: str, heads: Sequence[TreeHead], *, sync: bool) -> None:
        with self._locked():
            data = self._read()
            known = _head_of(data.get(kind))
            floor = known.size if known is not None else -1
            # Another writer may have gone as far already: never move backwards.
            newer = sorted((h for h in heads if h.size > floor), key=lambda h: h.size)
            if not newer:
                return
            data[kind] = _head_json(newer[-1])
            if kind == "written":
                recent = [*data.get("recent", []), *(_head_json(h) for h in newer)]
                data["recent"] = recent[-RECENT:]
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, separators=(",", ":"))
                if sync:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, self.path)

    def remember_signed(self, head: TreeHead) -> None:
        self._advance("signed", [head], sync=True)

    def remember_written(self, heads: Sequence[TreeHead]) -> None:
        # Not fsynced: after a power loss the file may hold an older head, which is still a
        # prefix of the committed tree, so the check stays sound; only the newest moment of
        # the tail loses this protection.
        self._advance("written", heads, sync=False)


class SqlMemory:
    """The latest signed checkpoint, in the main database (table ``audit_signer_state``)."""

    def __init__(self, engine: Engine, origin: str) -> None:
        self.engine = engine
        self.origin = origin

    def signed(self) -> TreeHead | None:
        t = signer_state_table
        with store_errors(), self.engine.connect() as conn:
            row = conn.execute(
                select(t.c.tree_size, t.c.root_hash, t.c.note).where(t.c.origin == self.origin)
            ).one_or_none()
        return TreeHead(row.tree_size, bytes(row.root_hash), row.note) if row else None

    def written(self) -> TreeHead | None:
        return None

    def remember_signed(self, head: TreeHead) -> None:
        t = signer_state_table
        values = {"tree_size": head.size, "root_hash": head.root, "note": head.note or ""}
        with store_errors(), self.engine.begin() as conn:
            moved = conn.execute(
                update(t)
                .where(t.c.origin == self.origin, t.c.tree_size < head.size)
                .values(**values)
            ).rowcount
            if moved:
                return
            exists = conn.execute(
                select(t.c.tree_size).where(t.c.origin == self.origin)
            ).one_or_none()
            if exists is None:
                with contextlib.suppress(IntegrityError), conn.begin_nested():
                    conn.execute(t.insert().values(origin=self.origin, **values))

    def remember_written(self, heads: Sequence[TreeHead]) -> None:
        return None


class Memories:
    """Several memories read and written together; the largest head of each kind wins."""

    def __init__(self, memories: Sequence[HeadMemory]) -> None:
        self.memories = list(memories)

    def _largest(self, heads: list[TreeHead | None]) -> TreeHead | None:
        known = [h for h in heads if h is not None]
        return max(known, key=lambda h: h.size) if known else None

    def signed(self) -> TreeHead | None:
        return self._largest([m.signed() for m in self.memories])

    def written(self) -> TreeHead | None:
        return self._largest([m.written() for m in self.memories])

    def remember_signed(self, head: TreeHead) -> None:
        for m in self.memories:
            m.remember_signed(head)

    def remember_written(self, heads: Sequence[TreeHead]) -> None:
        for m in self.memories:
            m.remember_written(heads)
