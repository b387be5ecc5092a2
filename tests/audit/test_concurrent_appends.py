"""Appends that scale across worker processes: the tree's right edge travels with the locked
head, so an append costs two round trips (BEGIN with the locked head read; the writes with the
COMMIT), holds the head's lock across one, and never reads tree nodes because another process
appended in between."""

from __future__ import annotations

import itertools
import multiprocessing
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic import command
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg.pq import Trace
from sqlalchemy import Engine, event, text

from audit import AuditLog, AuditUnavailable, EntryFilter, Export, NoteSigner, verify
from audit.merkle import CompactRange, fold, verify_consistency, verify_inclusion
from gateway import db
from gateway.db import make_engine
from gateway.keys import load_or_create_ed25519
from tests.audit.appender import append_batches
from tests.audit.conftest import ORIGIN, make_entry

POSTGRES_ONLY = pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


def stored_edge(engine: Engine) -> tuple[int, bytes, bytes]:
    """The head row as the database holds it: size, root, packed right edge."""
    with engine.connect() as conn:
        size, root, edge = conn.execute(
            text("SELECT tree_size, root_hash, right_edge FROM audit_head WHERE id = 1")
        ).one()
    return int(size), bytes(root), bytes(edge)


def assert_edge_matches_nodes(log: AuditLog, engine: Engine) -> None:
    size, root, edge = stored_edge(engine)
    keys = CompactRange.keys(size)
    nodes = log.storage.read_nodes(keys)
    assert edge == b"".join(nodes[k] for k in keys)
    assert fold([nodes[k] for k in keys]) == root == log.root(size)


@POSTGRES_ONLY
def test_two_worker_processes_appending_batches_at_once_build_one_consistent_log(
    request: pytest.FixtureRequest, audit_url: str, audit_engine: Engine, tmp_path: Path
) -> None:
    per, batch = 500, 10
    key_path = tmp_path / "keys" / "audit-signing.pem"
    load_or_create_ed25519(key_path)
    spawn = multiprocessing.get_context("spawn")
    start, out = spawn.Barrier(2), spawn.Queue()
    workers = [
        spawn.Process(
            target=append_batches, args=(audit_url, str(key_path), name, per, batch, start, out)
        )
        for name in ("w1", "w2")
    ]
    for w in workers:
        w.start()
    reported = dict(out.get(timeout=300) for _ in workers)
    for w in workers:
        w.join(timeout=60)
    assert [w.exitcode for w in workers] == [0, 0]

    # Sizes add up, no index twice, no gap; each batch got a contiguous run of indices.
    indices = [i for name in ("w1", "w2") for b in reported[name] for i in b]
    assert sorted(indices) == list(range(2 * per))
    for name in ("w1", "w2"):
        assert len(reported[name]) == per // batch
        for b in reported[name]:
            assert b == list(range(b[0], b[0] + len(b)))
    # The two workers' batches interleave: they appended at the same time.
    firsts = {name: sorted(b[0] for b in reported[name]) for name in ("w1", "w2")}
    assert any(firsts["w1"][0] < s < firsts["w1"][-1] for s in firsts["w2"])

    log = AuditLog.for_engine(
        audit_engine, NoteSigner(ORIGIN, load_or_create_ed25519(key_path)), ORIGIN
    )
    request.addfinalizer(log.close)
    size, root = log.head()
    assert size == 2 * per
    # Every entry once, at the index its worker was told.
    where = {}
    after = None
    while page := log.entries(EntryFilter(action="test_append"), after=after, limit=500):
        where.update({e.entry.decision_id: e.index for e in page})
        after = page[-1].index
    for name in ("w1", "w2"):
        told = [i for b in reported[name] for i in b]
        assert [where[f"{name}-{n}"] for n in range(per)] == told

    assert_edge_matches_nodes(log, audit_engine)
    for index in range(size):
        proof = log.inclusion_proof(index, size)
        assert log.entry(index).leaf_hash == proof.leaf_hash  # type: ignore[union-attr]
        assert verify_inclusion(proof.leaf_hash, index, size, proof.audit_path, root)
    # Both workers signed checkpoints (every 100 entries), each verified by its signature on
    # opening; each extends the one before it and the log's head extends them all.
    checkpoints = log.checkpoints()
    assert len(checkpoints) >= 2 * per // 100
    heads = [(c.tree_size, c.root_hash) for c in checkpoints] + [(size, root)]
    for (first, first_root), (second, second_root) in itertools.pairwise(heads):
        assert log.root(first) == first_root
        proof = log.consistency_proof(first, second).proof
        assert verify_consistency(first, second, first_root, second_root, proof)
    report = verify(Export.from_lines(log.export_lines()), verifier_key=log.verifier_key)
    assert report.ok, report.problem
    assert report.checkpoints_verified == len(checkpoints)

    # Either worker's log, reopened, appends on from the edge the other one left.
    log.append_many([make_entry(n) for n in range(3)])
    assert log.size() == 2 * per + 3
    assert_edge_matches_nodes(log, audit_engine)


@contextmanager
def traced(engine: Engine, directory: Path) -> Iterator[list[Path]]:
    """libpq's protocol trace of every connection ``engine`` opens from here on (one file
    each): the messages as they go to and come from the server."""
    files: list[Path] = []
    handles = []
    traced_connections = []

    def trace(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        path = directory / f"connection-{len(files)}.trace"
        handle = path.open("w")
        files.append(path)
        handles.append(handle)
        dbapi_connection.pgconn.trace(handle.fileno())
        dbapi_connection.pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS | Trace.REGRESS_MODE)
        traced_connections.append(dbapi_connection)

    event.listen(engine, "connect", trace)
    try:
        yield files
    finally:
        event.remove(engine, "connect", trace)
        for connection in traced_connections:
            if not connection.closed:
                connection.pgconn.untrace()  # libpq flushes its buffered trace
        for handle in handles:
            handle.close()


def round_trips(path: Path) -> list[list[str]]:
    """The statements the client ran, grouped by what it sent before waiting for the server
    (a group ends at each Sync of the extended protocol, or a simple Query), each named by its
    first keyword. A statement the driver prepared (after a few runs) is bound by its name."""
    keyword: dict[str, str] = {}
    bound = ""
    groups: list[list[str]] = [[]]
    for line in path.read_text().splitlines():
        if not line.startswith("F\t"):
            continue  # the server's messages, and the further lines of a multi-line statement
        _direction, _length, kind, fields = [*line.split("\t", 3), ""][:4]
        if kind == "Parse":
            name, sql = re.match(r' "([^"]*)" "(\w+)', fields).groups()  # type: ignore[union-attr]
            keyword[name] = sql.upper()
        elif kind == "Bind":
            bound = keyword[re.match(r' "[^"]*" "([^"]*)"', fields).group(1)]  # type: ignore[union-attr]
        elif kind == "Execute":
            groups[-1].append(bound)
        elif kind == "Query":
            groups[-1].append(fields.strip(' "').split()[0].upper())
        if kind in ("Sync", "Query"):
            groups.append([])
    return [g for g in groups if g]


@POSTGRES_ONLY
def test_an_append_is_two_round_trips_and_reads_no_node_after_another_process_appended(
    audit_url: str, audit_engine: Engine, tmp_path: Path
) -> None:
    ours, theirs = make_engine(audit_url), make_engine(audit_url)
    key = Ed25519PrivateKey.generate()
    options = {"checkpoint_every_entries": 10**9, "checkpoint_every_seconds": 3600.0}
    log = AuditLog.for_engine(ours, NoteSigner(ORIGIN, key), ORIGIN, **options)  # type: ignore[arg-type]
    other = AuditLog.for_engine(theirs, NoteSigner(ORIGIN, key), ORIGIN, **options)  # type: ignore[arg-type]
    try:
        log.append_many([make_entry(n) for n in range(5)])  # signs the first checkpoint
        with traced(ours, tmp_path) as files:
            ours.dispose()  # every connection from here on is opened anew, so traced
            for n in range(5, 50, 5):
                other.append_many([make_entry(1000 + n)])  # the other worker moves the head
                log.append_many([make_entry(i) for i in range(n, n + 5)])
        assert len(files) == 1  # everything the batches did, on the sequencer's connection
        trips = round_trips(files[0])
        assert len(trips) == 2 * 9
        for lock, write in zip(trips[::2], trips[1::2], strict=True):
            # 1: begin, bound the lock wait, take the head's lock and read the head and edge.
            assert lock == ["BEGIN", "SET", "SELECT"]
            # 2: the batch's rows, its new subtrees, the head with its edge, the commit.
            assert write == ["INSERT", "INSERT", "UPDATE", "COMMIT"]
        assert log.size() == 5 + 9 * 6
        assert_edge_matches_nodes(log, audit_engine)
    finally:
        log.close()
        other.close()
        ours.dispose()
        theirs.dispose()


def test_the_migration_fills_the_edge_of_an_existing_log_from_its_nodes(
    database_url: str, log: AuditLog, audit_engine: Engine
) -> None:
    log.append_many([make_entry(n) for n in range(37)])
    edge_before = stored_edge(audit_engine)
    config = db.alembic_config("audit", database_url)
    command.downgrade(config, "audit_0004")
    command.upgrade(config, "heads")
    assert stored_edge(audit_engine) == edge_before
    assert_edge_matches_nodes(log, audit_engine)
    assert [r.index for r in log.append_many([make_entry(37), make_entry(38)])] == [37, 38]
    log.issue_checkpoint()
    report = verify(Export.from_lines(log.export_lines()), verifier_key=log.verifier_key)
    assert report.ok, report.problem


def test_an_edge_that_does_not_fold_to_the_root_fails_appends_closed(
    log: AuditLog, audit_engine: Engine
) -> None:
    log.append_many([make_entry(n) for n in range(6)])
    size, _root, edge = stored_edge(audit_engine)
    forged = bytes([edge[0] ^ 1]) + edge[1:]
    with audit_engine.begin() as conn:  # the head may be rewritten at the same size
        conn.execute(text("UPDATE audit_head SET right_edge = :e WHERE id = 1"), {"e": forged})
    with pytest.raises(AuditUnavailable):
        log.append(make_entry(6))
    with pytest.raises(AuditUnavailable):
        log.append_many([make_entry(6)])
    assert log.size() == size
    assert stored_edge(audit_engine)[2] == forged  # nothing written over it
