"""Worker processes for the multi-process tests: ``main`` appends COUNT entries with THREADS
threads (so group commit and cross-process sequencing interleave), then prints its indices;
``append_batches`` (started with multiprocessing's spawn) appends in batches once every worker
is ready, and reports each batch's indices."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

from audit import AuditEntry, AuditLog, NoteSigner
from gateway.db import make_engine
from gateway.keys import load_or_create_ed25519


def main(url: str, key_path: str, worker: str, count: int, threads: int) -> None:
    engine = make_engine(url)
    log = AuditLog.for_engine(
        engine,
        NoteSigner("sijill.test/audit", load_or_create_ed25519(Path(key_path))),
        "sijill.test/audit",
        checkpoint_every_entries=997,
    )
    indices: list[int] = []
    lock = threading.Lock()

    def run(t: int) -> None:
        mine = []
        for n in range(t, count, threads):
            entry = AuditEntry(
                time_ns=n,
                actor={"kind": "system", "id": worker, "sector": None},
                action="test_append",
                subject=None,
                decision_id=f"{worker}-{n}",
            )
            mine.append(log.append(entry).index)
        with lock:
            indices.extend(mine)

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    log.close()
    engine.dispose()
    json.dump(indices, sys.stdout)


def batch_entry(worker: str, n: int) -> AuditEntry:
    return AuditEntry(
        time_ns=n,
        actor={"kind": "system", "id": worker, "sector": None},
        action="test_append",
        subject=None,
        decision_id=f"{worker}-{n}",
    )


def append_batches(
    url: str, key_path: str, worker: str, count: int, batch: int, start: Any, out: Any
) -> None:
    """Append ``count`` entries in batches of ``batch`` (``append_many``: one sequencer
    transaction each) once ``start`` (a barrier of all the workers) lets every worker go;
    put ``(worker, [indices of each batch])`` on ``out``."""
    engine = make_engine(url)
    log = AuditLog.for_engine(
        engine,
        NoteSigner("sijill.test/audit", load_or_create_ed25519(Path(key_path))),
        "sijill.test/audit",
        checkpoint_every_entries=100,
    )
    log.bind()
    batches: list[list[int]] = []
    start.wait(timeout=60)
    for lo in range(0, count, batch):
        entries = [batch_entry(worker, n) for n in range(lo, min(count, lo + batch))]
        batches.append([r.index for r in log.append_many(entries)])
    log.close()
    engine.dispose()
    out.put((worker, batches))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
