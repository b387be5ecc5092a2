"""A transparency-log witness, as C2SP ``tlog-witness`` defines one (the protocol's logic; the
HTTP server around it is ``gateway.witness``).

A witness is an independent party with its own key and its own store. For each log it follows
it keeps the latest checkpoint it cosigned, and it cosigns a new checkpoint only if the log
proves it consistent with that one (RFC 9162 §2.1.4.2). A log that rewrites or rolls back its
history therefore cannot get the witness's word for the new version; a citizen or auditor who
requires cosignatures (``audit.verify_receipt(..., witnesses=..., min_witnesses=N)``) cannot be
shown two histories.

Request (``POST <prefix>/add-checkpoint``)::

    old <size the log believes the witness has>
    <base64 hash of the consistency proof, one a line>
    <blank line>
    <the signed checkpoint note>

Answers: 200 with the cosignature line (C2SP tlog-cosignature); 409 with the witness's size
(``text/x.tlog.size``) when ``old`` is not it, or when the same size comes with another root;
422 when the proof does not verify; 403 when no trusted log key signed the note; 404 for an
unknown origin; 400 for a malformed request.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy import (
    Engine,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from audit.checkpoint import NoteVerifier, open_checkpoint
from audit.cosignature import Cosigner, with_signature_lines
from audit.errors import InvalidCheckpoint
from audit.merkle import verify_consistency
from audit.storage.tables import witness_logs_table, witness_metadata

SIZE_CONTENT_TYPE = "text/x.tlog.size"
MAX_PROOF_LINES = 63  # C2SP tlog-witness: enough for any uint64 tree size


class WitnessRefusal(Exception):
    """Why the witness will not cosign; ``status`` is the HTTP status the protocol gives."""

    status = 400


class BadRequest(WitnessRefusal):
    status = 400


class UnknownLog(WitnessRefusal):
    status = 404


class NotSignedByLog(WitnessRefusal):
    status = 403


class InconsistentProof(WitnessRefusal):
    status = 422


class SizeConflict(WitnessRefusal):
    """``old`` is not the size the witness has (or the same size came with another root)."""

    status = 409

    def __init__(self, size: int) -> None:
        super().__init__(f"the witness's latest size for this log is {size}")
        self.size = size


@dataclass(frozen=True)
class Submission:
    old_size: int
    proof: list[bytes]
    note: str


def parse_submission(body: bytes) -> Submission:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the request is not UTF-8") from None
    header, sep, note = text.partition("\n\n")
    if not sep:
        raise BadRequest("the request has no blank line before the checkpoint")
    lines = header.split("\n")
    first = lines[0].split(" ")
    if len(first) != 2 or first[0] != "old" or not first[1].isdigit():
        raise BadRequest("the request starts with 'old <size>'")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise BadRequest("the consistency proof is too long")
    try:
        proof = [base64.b64decode(line, validate=True) for line in lines[1:]]
    except (ValueError, binascii.Error):
        raise BadRequest("a proof line is not base64") from None
    if any(len(h) != 32 for h in proof):
        raise BadRequest("a proof hash is not 32 bytes")
    return Submission(int(first[1]), proof, note)


def format_submission(old_size: int, proof: list[bytes], note: str) -> bytes:
    lines = [f"old {old_size}", *(base64.b64encode(h).decode() for h in proof)]
    return ("\n".join(lines) + "\n\n" + note).encode()


def latest_cosigned(engine: Engine, origin: str) -> str | None:
    """The latest checkpoint a witness's store holds as cosigned for ``origin`` (a verifier
    reads a witness's store this way when it has it at hand)."""
    t = witness_logs_table
    with engine.connect() as conn:
        row = conn.execute(select(t.c.note).where(t.c.origin == origin)).one_or_none()
    return str(row.note) if row else None


class Witness:
    """Cosigns checkpoints of the ``logs`` it follows (origin → the log's verifier key)."""

    def __init__(
        self,
        engine: Engine,
        cosigner: Cosigner,
        logs: Mapping[str, NoteVerifier],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.cosigner = cosigner
        self.logs = dict(logs)
        self.clock = clock
        witness_metadata.create_all(engine)

    def _state(self, origin: str) -> tuple[int, bytes | None]:
        t = witness_logs_table
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.c.tree_size, t.c.root_hash).where(t.c.origin == origin)
            ).one_or_none()
        return (row.tree_size, bytes(row.root_hash)) if row else (0, None)

    def latest(self, origin: str) -> str | None:
        """The latest checkpoint this witness cosigned for ``origin``, with its cosignature."""
        return latest_cosigned(self.engine, origin)

    def add_checkpoint(self, body: bytes) -> str:
        """Check a submission; return the cosignature line, or raise :class:`WitnessRefusal`."""
        sub = parse_submission(body)
        origin = sub.note.split("\n", 1)[0]
        verifier = self.logs.get(origin)
        if verifier is None:
            raise UnknownLog("this witness does not follow that log")
        try:
            cp = open_checkpoint(sub.note, verifier, origin)
        except InvalidCheckpoint as exc:
            raise NotSignedByLog(str(exc)) from None
        if sub.old_size > cp.tree_size:
            raise BadRequest("old size is larger than the checkpoint's")
        size, root = self._state(origin)
        if sub.old_size != size:
            raise SizeConflict(size)
        if sub.old_size == cp.tree_size:
            if root is not None and root != cp.root_hash:
                raise SizeConflict(size)  # a fork at the same size: never cosigned
            if sub.proof:
                raise InconsistentProof("a proof between equal sizes is empty")
        elif sub.old_size == 0:
            if sub.proof:
                raise InconsistentProof("a proof from the empty tree is empty")
        else:
            assert root is not None
            if not verify_consistency(size, cp.tree_size, root, cp.root_hash, sub.proof):
                raise InconsistentProof(
                    f"the checkpoint of size {cp.tree_size} is not consistent with the one of "
                    f"size {size} this witness cosigned"
                )
        body_text = sub.note.partition("\n\n")[0] + "\n"
        line = self.cosigner.cosign(body_text, int(self.clock()))
        cosigned = with_signature_lines(sub.note, [line])
        self._advance(origin, size, root, cp.tree_size, cp.root_hash, cosigned)
        return line

    def _advance(
        self,
        origin: str,
        old_size: int,
        old_root: bytes | None,
        size: int,
        root: bytes,
        note: str,
    ) -> None:
        """Move the state from (old_size, old_root) to (size, root) atomically, or raise
        :class:`SizeConflict` if another submission moved it first: two concurrent
        submissions can never both be cosigned from the same state (no fork)."""
        t = witness_logs_table
        values = {"tree_size": size, "root_hash": root, "note": note}
        try:
            with self.engine.begin() as conn:
                if old_root is None:
                    conn.execute(insert(t).values(origin=origin, **values))
                    return
                moved = conn.execute(
                    update(t)
                    .where(
                        t.c.origin == origin,
                        t.c.tree_size == old_size,
                        t.c.root_hash == old_root,
                    )
                    .values(**values)
                ).rowcount
                if moved == 1:
                    return
        except IntegrityError:
            pass  # another submission recorded this log first
        raise SizeConflict(self._state(origin)[0])
