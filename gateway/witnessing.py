"""Checkpoints signed every second and taken to the witnesses; the witness's HTTP server.

- :class:`Checkpointer`: a thread every worker process runs; one of them, on one host, signs.
  Each tick (``SIJILL_CHECKPOINT_EVERY_SECONDS``, or sooner when a batch crosses
  ``SIJILL_CHECKPOINT_EVERY_ENTRIES``) it writes out what this process buffered, then takes or
  renews the lease ``audit-checkpoints`` (gateway/leases.py); the holder signs a checkpoint if
  the tree grew (``AuditLog.checkpoint_if_grown``: the signer's guard first) under the lease's
  fence, so a holder whose lease expired cannot sign, then brings every witness up to the
  newest checkpoint. A crashed holder's lease expires and another process takes over. At a clean
  stop a process signs once more if it holds (or can take) the lease, then gives it up, so no
  unsigned tail is left.
- :class:`WitnessClient`: the log's side of C2SP tlog-witness (``add-checkpoint`` with an RFC 9162
  consistency proof from the size the witness last cosigned); cosignatures are checked against
  the witness's published key before they are kept.
- :func:`witness_app`: a witness (``audit.Witness``) served over HTTP, by ``sijill witness
  serve`` and, for the demo, under ``/witness`` of the gateway itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext, suppress

import anyio.to_thread
import httpx
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy.exc import SQLAlchemyError

from audit import (
    SIZE_CONTENT_TYPE,
    AuditLog,
    AuditUnavailable,
    Checkpoint,
    CheckpointRefused,
    InvalidCheckpoint,
    NotYetCheckpointed,
    Witness,
    WitnessRefusal,
    format_submission,
    with_signature_lines,
)
from gateway.leases import Lease, LeaseLost
from gateway.witnesses import WitnessEndpoint

log = logging.getLogger("sijill.audit")
MAX_SUBMISSION = 64 * 1024  # a note and at most 63 proof lines fit many times over


class WitnessClient:
    """Submits checkpoints to witnesses and keeps the cosignatures they return."""

    def __init__(
        self,
        audit: AuditLog,
        witnesses: list[WitnessEndpoint],
        alarm: Callable[[str], None],
        *,
        timeout_s: float = 5.0,
    ) -> None:
        self.audit = audit
        self.witnesses = witnesses
        self.alarm = alarm
        self._known: dict[str, int] = {}  # witness name -> size it last cosigned, as we know
        self._cosigned: dict[str, int] = {}
        self._http = httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def bring_up_to(self, cp: Checkpoint) -> list[str]:
        """Submit ``cp`` to every witness that has not cosigned it; return who cosigned."""
        cosigned: list[tuple[str, str]] = []
        for witness in self.witnesses:
            if self._cosigned.get(witness.key.name, -1) >= cp.tree_size:
                continue
            line = self._submit(witness, cp)
            if line is not None:
                cosigned.append((witness.key.name, line))
                self._cosigned[witness.key.name] = cp.tree_size
        if cosigned:
            self.audit.add_cosignatures(cp, cosigned)
        return [name for name, _ in cosigned]

    def _submit(self, witness: WitnessEndpoint, cp: Checkpoint) -> str | None:
        name = witness.key.name
        old = self._known.get(name, 0)
        for _attempt in range(3):
            if old > cp.tree_size:
                self.alarm(
                    f"witness {name} has cosigned a tree of {old} entries, more than the "
                    f"{cp.tree_size} of this log's newest checkpoint: the log was rolled back"
                )
                return None
            proof = (
                self.audit.consistency_proof(old, cp.tree_size).proof
                if 0 < old < cp.tree_size
                else []
            )
            try:
                reply = self._http.post(
                    f"{witness.url}/add-checkpoint",
                    content=format_submission(old, proof, cp.note),
                    headers={"Content-Type": "text/plain; charset=utf-8"},
                )
            except httpx.HTTPError as exc:
                log.warning(
                    "witness unreachable",
                    extra={"witness": name, "error_class": type(exc).__name__},
                )
                return None
            if reply.status_code == 409 and reply.headers.get("content-type", "").startswith(
                SIZE_CONTENT_TYPE
            ):
                try:
                    old = int(reply.text.strip())
                except ValueError:
                    return None
                self._known[name] = old
                continue
            if reply.status_code == 422:
                self.alarm(
                    f"witness {name} refused the checkpoint of size {cp.tree_size}: it is not "
                    "consistent with the one the witness cosigned before"
                )
                return None
            if reply.status_code != 200:
                log.warning(
                    "witness refused the checkpoint",
                    extra={"witness": name, "status": reply.status_code},
                )
                return None
            line = reply.text
            try:
                cosigned = witness.key.verify(with_signature_lines(cp.note, [line]))
            except InvalidCheckpoint:
                cosigned = None
            if cosigned is None:
                log.warning("witness answered without a valid cosignature", extra={"witness": name})
                return None
            self._known[name] = cp.tree_size
            return line if line.endswith("\n") else line + "\n"
        return None


class Checkpointer:
    """The writer side's clock: a checkpoint at least every ``interval_s`` while the log grows,
    each taken to the witnesses, signed only by the holder of ``lease`` (every process signs
    when there is none: a single process, or tests)."""

    def __init__(
        self,
        audit: AuditLog,
        witnesses: WitnessClient | None,
        interval_s: float,
        lease: Lease | None = None,
    ) -> None:
        self.audit = audit
        self.witnesses = witnesses
        self.interval_s = interval_s
        self.lease = lease
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> None:
        """Write out this process's buffer; then, as the lease's holder, sign if the tree grew
        and bring the witnesses up to the newest checkpoint."""
        if self.audit.refused is not None:
            return
        self.audit.flush_memory()
        try:
            if not self.holds_lease():
                return  # another process signs
            cp = self.sign_if_grown()
            if self.witnesses is not None:
                if cp is None:
                    cp = self.audit.checkpoint()
                self.witnesses.bring_up_to(cp)
        except CheckpointRefused:
            pass  # the alarm is raised; appends fail closed from now on
        except NotYetCheckpointed:
            pass
        except AuditUnavailable:
            log.warning("checkpoint not signed: the audit store is unreachable")

    def holds_lease(self) -> bool:
        """Take or renew the lease; whether this process is the one that signs."""
        if self.lease is None:
            return True
        try:
            return self.lease.acquire()
        except SQLAlchemyError as exc:
            log.warning(
                "checkpoint not signed: the lease's store is unreachable",
                extra={"error_class": type(exc).__name__},
            )
            return False

    def sign_if_grown(self) -> Checkpoint | None:
        """Sign a checkpoint if the tree grew, under the lease's fence, if this process holds
        the lease (None otherwise). Raises what ``AuditLog.checkpoint_if_grown`` raises."""
        if self.lease is not None and not self.lease.token and not self.holds_lease():
            return None
        fence: AbstractContextManager[object] = (
            self.lease.guard() if self.lease is not None else nullcontext()
        )
        try:
            with fence:
                return self.audit.checkpoint_if_grown()
        except LeaseLost:
            log.warning("checkpoint not signed: the lease expired before it was signed")
        except SQLAlchemyError as exc:  # the audit store's errors come as AuditUnavailable
            log.warning(
                "checkpoint not signed: the lease's store is unreachable",
                extra={"error_class": type(exc).__name__},
            )
        return None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.audit.grew.wait(self.interval_s)
            self.audit.grew.clear()
            if self._stop.is_set():
                break
            self.tick()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="audit-checkpointer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the clock, sign what is left if this process holds (or can take) the lease,
        and give the lease up, so a clean stop leaves no unsigned tail."""
        self._stop.set()
        self.audit.grew.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.tick()
        if self.lease is not None:
            with suppress(SQLAlchemyError):  # unreachable: the lease expires on its own
                self.lease.release()


def witness_app(witness: Witness) -> FastAPI:
    """C2SP tlog-witness over HTTP: ``POST /add-checkpoint``; and ``GET /latest?origin=``, the
    latest checkpoint this witness cosigned for a log (what a verifier compares the log with)."""
    app = FastAPI(title="Sijill audit witness", openapi_url=None, docs_url=None, redoc_url=None)

    @app.post("/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_SUBMISSION:
                return PlainTextResponse("request too large\n", status_code=413)
        try:
            # The witness's store is synchronous: off the event loop.
            line = await anyio.to_thread.run_sync(witness.add_checkpoint, body)
        except WitnessRefusal as exc:
            size = getattr(exc, "size", None)
            if size is not None:
                # Exactly this type, no charset: clients compare it whole.
                headers = {"Content-Type": SIZE_CONTENT_TYPE}
                return Response(f"{size}\n", status_code=409, headers=headers)
            return PlainTextResponse(f"{exc}\n", status_code=exc.status)
        return PlainTextResponse(line)

    @app.get("/latest")
    def latest(origin: str) -> Response:
        note = witness.latest(origin)
        if note is None:
            return PlainTextResponse("no checkpoint cosigned for that log\n", status_code=404)
        return PlainTextResponse(note)

    return app
