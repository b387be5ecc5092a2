"""The log on a real database (SQLite and PostgreSQL): order, proofs, checkpoints, listings,
receipts, group commit, fail-closed appends and the append-only guard."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from audit import (
    AuditLog,
    AuditUnavailable,
    EntryFilter,
    Export,
    InvalidProof,
    NoteSigner,
    SqlStorage,
    open_checkpoint,
    prepare_entry,
    verify,
    verify_receipt,
)
from audit.merkle import verify_consistency, verify_inclusion
from storekit import durable_writer
from tests.audit.conftest import ORIGIN, make_entry


def test_appends_get_consecutive_indices_and_the_leaf_hash_of_their_canonical_bytes(
    log: AuditLog,
) -> None:
    receipts = [log.append(make_entry(n)) for n in range(10)]
    assert [r.index for r in receipts] == list(range(10))
    assert receipts[3].leaf_hash == make_entry(3).leaf_hash()
    assert log.size() == 10


def test_inclusion_and_consistency_proofs_verify_against_signed_checkpoints(
    log: AuditLog,
) -> None:
    for n in range(23):
        log.append(make_entry(n))
    early = log.checkpoint()
    for n in range(23, 41):
        log.append(make_entry(n))
    late = log.issue_checkpoint()
    assert (early.tree_size, late.tree_size) == (23, 41) or early.tree_size <= 23
    for index in (0, 7, 22, 40):
        proof = log.inclusion_proof(index, late.tree_size)
        assert verify_inclusion(
            proof.leaf_hash, index, late.tree_size, proof.audit_path, late.root_hash
        )
    c = log.consistency_proof(early.tree_size, late.tree_size)
    assert verify_consistency(
        early.tree_size, late.tree_size, early.root_hash, late.root_hash, c.proof
    )


def test_proofs_beyond_the_tree_are_refused(log: AuditLog) -> None:
    log.append(make_entry(0))
    with pytest.raises(InvalidProof):
        log.inclusion_proof(1, 1)
    with pytest.raises(InvalidProof):
        log.inclusion_proof(0, 2)
    with pytest.raises(InvalidProof):
        log.consistency_proof(2, 1)


def test_a_checkpoint_is_stored_every_n_entries(log: AuditLog) -> None:
    # The fixture's interval is 4 entries; the very first append also checkpoints (none yet).
    for n in range(9):
        log.append(make_entry(n))
    sizes = [cp.tree_size for cp in log.checkpoints()]
    assert {4, 8} <= set(sizes)
    for cp in log.checkpoints():
        assert open_checkpoint(cp.note, log.verifier_key, ORIGIN).root_hash == log.root(
            cp.tree_size
        )


def test_a_checkpoint_is_issued_after_the_time_interval(
    audit_engine: Engine, signer: NoteSigner
) -> None:
    now = [1_000_000_000_000]
    log = AuditLog.for_engine(
        audit_engine,
        signer,
        ORIGIN,
        checkpoint_every_entries=1000,
        checkpoint_every_seconds=10,
        clock=lambda: now[0],
    )
    with closing(log):
        log.append(make_entry(0))
        log.append(make_entry(1))
        assert [c.tree_size for c in log.checkpoints()] == [1]
        now[0] += 11_000_000_000
        log.append(make_entry(2))
        assert [c.tree_size for c in log.checkpoints()] == [1, 3]
    assert log.checkpoints()[-1].timestamp_ns == now[0]


def test_a_citizen_lists_exactly_their_own_entries(log: AuditLog) -> None:
    for n in range(30):
        log.append(make_entry(n, subject="st_mine" if n % 5 == 0 else f"st_other{n}"))
    mine = log.entries(EntryFilter(subject="st_mine"))
    assert [e.index for e in mine] == [0, 5, 10, 15, 20, 25]
    assert all(e.entry.subject == "st_mine" for e in mine)
    newest = log.entries(EntryFilter(subject="st_mine"), before=1 << 62, limit=2)
    assert [e.index for e in newest] == [25, 20]


def test_a_receipt_verifies_offline_with_only_the_verifier_key(log: AuditLog) -> None:
    for n in range(13):
        log.append(make_entry(n, subject="st_citizen" if n == 11 else None))
    receipt = log.receipt(11)
    entry = verify_receipt(receipt, log.verifier_key)
    assert entry.subject == "st_citizen"


def test_a_receipt_with_an_altered_entry_fails(log: AuditLog) -> None:
    from audit import VerificationFailed

    for n in range(5):
        log.append(make_entry(n))
    receipt = log.receipt(2)
    receipt["entry"] = receipt["entry"].replace("cnss", "cnop")
    with pytest.raises(VerificationFailed):
        verify_receipt(receipt, log.verifier_key)


def test_entries_filter_by_agency_purpose_action_outcome_and_time(log: AuditLog) -> None:
    log.append(make_entry(0, agency="cnss", outcome="allow"))
    log.append(make_entry(1, agency="anam", purpose="amo", outcome="deny"))
    log.append(make_entry(2, agency="anam", action="eligibility", outcome="allow"))
    assert [e.index for e in log.entries(EntryFilter(agency="anam"))] == [1, 2]
    assert [e.index for e in log.entries(EntryFilter(purpose="amo"))] == [1]
    assert [e.index for e in log.entries(EntryFilter(action="eligibility"))] == [2]
    assert [e.index for e in log.entries(EntryFilter(outcome="deny"))] == [1]
    t1 = make_entry(1).time_ns
    assert [e.index for e in log.entries(EntryFilter(since_ns=t1, until_ns=t1 + 1))] == [1]
    page = log.entries(limit=2)
    assert [e.index for e in log.entries(after=page[-1].index)] == [2]
    stats = log.stats()
    assert stats["tree_size"] == 3 and stats["by_outcome"] == {"allow": 2, "deny": 1}


def test_concurrent_appends_are_group_committed_in_one_total_order(log: AuditLog) -> None:
    transactions = []
    real = log.storage.sequencer

    @contextmanager
    def counting(transaction: object = None) -> Iterator[object]:
        transactions.append(1)
        with real(transaction) as seq:  # type: ignore[arg-type]
            yield seq

    log.storage.sequencer = counting  # type: ignore[method-assign]
    threads, per = 8, 40
    results: list[int] = []
    lock = threading.Lock()

    def worker(t: int) -> None:
        for n in range(per):
            r = log.append(make_entry(t * 1000 + n))
            with lock:
                results.append(r.index)

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    assert sorted(results) == list(range(threads * per))
    assert len(transactions) < threads * per  # batches shared commits
    log.issue_checkpoint()
    assert verify(Export.from_lines(log.export_lines()), verifier_key=log.verifier_key).ok


def test_append_many_writes_its_batch_while_holding_the_callers_write_guard(
    log: AuditLog,
) -> None:
    log.append(make_entry(0))
    sizes: list[tuple[str, int]] = []

    @contextmanager
    def guard() -> Iterator[None]:
        sizes.append(("taken", log.size()))
        yield
        sizes.append(("released", log.size()))

    receipts = log.append_many([make_entry(n) for n in range(1, 6)], write_guard=guard())
    assert [r.index for r in receipts] == [1, 2, 3, 4, 5]
    # Taken once, before the batch is sequenced, and released only once it is committed.
    assert sizes == [("taken", 1), ("released", 6)]

    class Refused(Exception):
        pass

    @contextmanager
    def refusing() -> Iterator[None]:
        raise Refused
        yield

    with pytest.raises(Refused):
        log.append_many([make_entry(6)], write_guard=refusing())
    assert log.size() == 6


def test_append_raises_audit_unavailable_when_the_store_fails(
    database_url: str, signer: NoteSigner
) -> None:
    from gateway.db import make_engine

    engine = make_engine(database_url)  # never migrated: no audit tables
    try:
        with closing(AuditLog.for_engine(engine, signer, ORIGIN)) as log:
            with pytest.raises(AuditUnavailable):
                log.append(make_entry(0))
            with pytest.raises(AuditUnavailable):
                log.ping()
    finally:
        engine.dispose()


def test_append_fails_closed_when_the_database_goes_away_mid_run(
    log: AuditLog, audit_engine: Engine
) -> None:
    log.append(make_entry(0))
    audit_engine.dispose()
    dead = _unreachable_engine(audit_engine)
    with closing(AuditLog(SqlStorage(dead), log.signer, ORIGIN)) as broken:
        with pytest.raises(AuditUnavailable):
            broken.append(make_entry(1))
    dead.dispose()
    assert log.size() == 1


def _unreachable_engine(engine: Engine) -> Engine:
    from gateway.db import make_engine

    if engine.dialect.name == "sqlite":
        return make_engine("sqlite:////nonexistent-dir/for/sure/audit.db")
    return make_engine(engine.url.set(port=1).render_as_string(hide_password=False))


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_entries SET outcome = 'deny' WHERE idx = 0",
        "DELETE FROM audit_entries WHERE idx = 0",
        "DELETE FROM audit_nodes",
        "UPDATE audit_checkpoints SET tree_size = 0",
        "UPDATE audit_head SET tree_size = 0",
        "DELETE FROM audit_head",
    ],
)
def test_the_database_refuses_to_rewrite_history(
    log: AuditLog, audit_engine: Engine, statement: str
) -> None:
    for n in range(3):
        log.append(make_entry(n))
    with pytest.raises(DBAPIError, match=r"append-only|may only grow"):
        with audit_engine.begin() as conn:
            conn.execute(text(statement))
    if audit_engine.dialect.name == "postgresql":  # SQLite has no TRUNCATE statement
        table = re.search(r"audit_\w+", statement)[0]  # type: ignore[index]
        with pytest.raises(DBAPIError, match="append-only"):
            with audit_engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {table}"))
    assert log.size() == 3


def _immediate(engine: Engine) -> Connection:
    return durable_writer(engine.connect())


def test_entries_appended_in_a_callers_transaction_commit_with_it_or_not_at_all(
    log: AuditLog, audit_engine: Engine
) -> None:
    log.append(make_entry(0))
    with closing(_immediate(audit_engine)) as conn:
        with conn.begin():
            conn.exec_driver_sql("CREATE TABLE caller_rows (n INTEGER)")
            conn.exec_driver_sql("INSERT INTO caller_rows VALUES (1)")
            receipts = log.append_many(
                [make_entry(1), prepare_entry(make_entry(2))], transaction=conn
            )
            assert log.size() == 1  # not visible to others before the caller commits
        assert [r.index for r in receipts] == [1, 2]
        with conn.begin():
            log.append_many([make_entry(3)], transaction=conn)
            conn.rollback()
    assert log.size() == 3
    assert [e.entry for e in log.entries(after=0)] == [make_entry(1), make_entry(2)]
    assert verify(Export.from_lines(log.export_lines()), verifier_key=log.verifier_key).ok


def test_a_batch_rolled_back_by_its_caller_leaves_no_stale_tree_edge_behind(
    log: AuditLog, audit_engine: Engine, signer: NoteSigner
) -> None:
    log.append(make_entry(0))
    with closing(_immediate(audit_engine)) as conn, conn.begin():
        log.append_many([make_entry(1), make_entry(2)], transaction=conn)
        conn.rollback()
    # Another writer reaches the same size with other entries...
    other = AuditLog.for_engine(audit_engine, signer, ORIGIN)
    try:
        other.append_many([make_entry(11), make_entry(12)])
    finally:
        other.close()
    # ...and this log's next append builds on the tree as stored, not on its rolled-back batch.
    log.append(make_entry(3))
    assert [e.entry for e in log.entries(after=-1)][1:] == [
        make_entry(11),
        make_entry(12),
        make_entry(3),
    ]
    assert verify(Export.from_lines(log.export_lines()), verifier_key=log.verifier_key).ok
