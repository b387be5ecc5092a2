"""A worker process for the multi-process ordering test: appends COUNT entries with THREADS
threads (so group commit and cross-process sequencing interleave), then prints its indices."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

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


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
