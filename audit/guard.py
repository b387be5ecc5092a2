"""The checkpoint signer's guard: what it remembers, and what it holds the store to.

Anyone who can write the audit database can rewrite it consistently (audit.memory). So before a
tree head is signed, the store must prove it extends every head this signer signed or wrote
before (RFC 9162 §2.1.4.2 consistency proof), as remembered outside the store and in this
process; if it cannot, the signer refuses for good in this process and raises the alarm.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from audit.checkpoint import NoteSigner, open_checkpoint
from audit.errors import AuditUnavailable, CheckpointRefused
from audit.memory import HeadMemory, TreeHead
from audit.merkle import NodeReader, consistency_ranges, hashes_for, verify_consistency
from audit.storage import LogStorage

Heads = tuple[TreeHead | None, TreeHead | None]  # a batch's (written, signed) heads
MEMORY_EVERY_S = 0.05  # how often batch heads are written to the signer's memory, at most


@dataclass(frozen=True)
class LogIdentity:
    """Who the log is: the key that signs its checkpoints, its origin, the signer's memory."""

    signer: NoteSigner
    origin: str
    memory: HeadMemory | None = None


class SignerGuard:
    """The signer's memory of its own heads, and the check of the store against them."""

    def __init__(
        self,
        storage: LogStorage,
        identity: Callable[[], LogIdentity],
        alarm: Callable[[str], None] | None,
    ) -> None:
        self.storage = storage
        self._identity = identity
        self.alarm = alarm
        # Why the signer refuses, once it does (for good, in this process).
        self.refused: str | None = None
        self._own_written: TreeHead | None = None
        self._own_signed: TreeHead | None = None
        self._unwritten: list[TreeHead] = []  # batch heads not yet in the memory
        self._unwritten_lock = threading.Lock()
        self._memory_written_at = 0.0

    def remember(self, heads: Heads) -> None:
        written, signed = heads
        if written is not None:
            self.remember_head("written", written)
        if signed is not None:
            self.remember_head("signed", signed)

    def check_not_refused(self) -> None:
        if self.refused is not None:
            raise CheckpointRefused(self.refused)

    def remember_head(self, kind: str, head: TreeHead) -> None:
        """Keep ``head`` (``written`` or ``signed``) in this process and in the memory. Written
        heads go to the memory together, at most every :data:`MEMORY_EVERY_S` (and at each
        checkpointer tick and at close): one file replaced per interval rather than per
        batch, every batch's head still in it."""
        own = f"_own_{kind}"
        known: TreeHead | None = getattr(self, own)
        if known is None or head.size > known.size:
            setattr(self, own, head)
        if kind == "signed":
            self._to_memory(lambda memory: memory.remember_signed(head), kind)
            return
        with self._unwritten_lock:
            self._unwritten.append(head)
            if time.monotonic() - self._memory_written_at < MEMORY_EVERY_S:
                return
        self.flush_memory()

    def flush_memory(self) -> None:
        """Write the batches' heads not yet in the signer's memory."""
        with self._unwritten_lock:
            heads, self._unwritten = self._unwritten, []
            self._memory_written_at = time.monotonic()
        if heads:
            self._to_memory(lambda memory: memory.remember_written(heads), "written")

    def _to_memory(self, write: Callable[[HeadMemory], None], kind: str) -> None:
        try:
            memory = self._identity().memory
            if memory is not None:
                write(memory)
        except (OSError, ValueError, AuditUnavailable) as exc:
            # The entries are durable; only the signer's extra protection is missing.
            self.raise_alarm(f"the signer could not record the {kind} head: {exc}", stop=False)

    def trusted_heads(self) -> list[tuple[str, TreeHead]]:
        """What the store's tree must extend: the newest checkpoint signed and tree head
        written, as remembered outside the store and in this process, and the newest
        checkpoint in the store whose signature is ours."""
        heads: list[tuple[str, TreeHead]] = []
        signed = [self._own_signed]
        written = [self._own_written]
        memory = self._identity().memory
        if memory is not None:
            try:
                signed.append(memory.signed())
                written.append(memory.written())
            except (OSError, ValueError) as exc:
                # Unreadable memory proves nothing either way: refuse rather than sign blind.
                self.raise_alarm(f"the signer's memory is unreadable: {exc}", stop=True)
        known_signed = [h for h in signed if h is not None]
        if known_signed:
            heads.append(
                ("the checkpoint the signer last signed", max(known_signed, key=lambda h: h.size))
            )
        known_written = [h for h in written if h is not None]
        if known_written:
            heads.append(
                ("the tree head the log last wrote", max(known_written, key=lambda h: h.size))
            )
        stored = self.storage.latest_checkpoint()
        if stored is not None:
            identity = self._identity()
            try:
                cp = open_checkpoint(stored.note, identity.signer.verifier, identity.origin)
            except ValueError:
                pass  # not ours: verify reports it; it proves nothing to the signer
            else:
                heads.append(("the newest stored checkpoint", TreeHead(cp.tree_size, cp.root_hash)))
        return heads

    def hold(self, read: NodeReader, size: int, root: bytes) -> None:
        """Refuse (for good, in this process) unless the tree of ``size`` and ``root`` in the
        store extends every trusted head (RFC 9162 §2.1.4.2 consistency proof, its hashes read
        from the store and checked against the trusted root)."""
        for label, head in self.trusted_heads():
            if head.size > size:
                problem = (
                    f"the audit store's tree has {size} entries, fewer than the {head.size} "
                    f"of {label}: entries were removed or the store was rolled back"
                )
            elif head.size == size:
                if head.root == root:
                    continue
                problem = f"the audit store's tree of size {size} differs from {label}"
            elif head.size == 0:
                continue
            else:
                try:
                    proof = hashes_for(consistency_ranges(head.size, size), read)
                except LookupError:
                    proof = []
                if verify_consistency(head.size, size, head.root, root, proof):
                    continue
                problem = (
                    f"the audit store's tree of size {size} is not consistent with {label} "
                    f"(size {head.size}): entries before index {head.size} were rewritten"
                )
            self.raise_alarm(problem, stop=True)

    def raise_alarm(self, problem: str, *, stop: bool) -> None:
        if stop:
            self.refused = problem
        if self.alarm is not None:
            self.alarm(problem)
        if stop:
            raise CheckpointRefused(problem)
