"""One total order across OS processes: two workers append at once on the same database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine

from audit import AuditLog, EntryFilter, Export, NoteSigner, verify
from gateway.keys import load_or_create_ed25519
from tests.audit.conftest import ORIGIN

ROOT = Path(__file__).resolve().parents[2]


def test_two_processes_appending_build_one_consistent_tree(
    request: pytest.FixtureRequest, audit_url: str, audit_engine: Engine, tmp_path: Path
) -> None:
    # 10,000 entries each on PostgreSQL as the issue asks; SQLite serialises writers on one
    # file lock, so a smaller count proves the same property in a fraction of the time.
    per = 10_000 if audit_engine.dialect.name == "postgresql" else 2_000
    key_path = tmp_path / "keys" / "audit-signing.pem"
    load_or_create_ed25519(key_path)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.audit.appender",
                audit_url,
                str(key_path),
                worker,
                str(per),
                "16",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for worker in ("w1", "w2")
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    indices = [i for out in outputs for i in json.loads(out)]
    assert sorted(indices) == list(range(2 * per))  # no gap, no duplicate

    log = AuditLog.for_engine(
        audit_engine, NoteSigner(ORIGIN, load_or_create_ed25519(key_path)), ORIGIN
    )
    request.addfinalizer(log.close)
    assert log.size() == 2 * per
    seen: list[str] = []
    after = None
    while page := log.entries(EntryFilter(action="test_append"), after=after, limit=5000):
        seen.extend(e.entry.decision_id or "" for e in page)
        after = page[-1].index
    expected = {f"{w}-{n}" for w in ("w1", "w2") for n in range(per)}
    assert len(seen) == len(expected) and set(seen) == expected  # every entry exactly once
    log.issue_checkpoint()
    report = verify(Export.from_lines(log.export_lines()), verifier_key=log.verifier_key)
    assert report.ok, report.problem
    assert report.checkpoints_verified >= 2 * per // 997  # both workers' checkpoints agree
