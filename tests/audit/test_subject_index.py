"""A subject's entries (a citizen's access log) through the segment-keyed subject index."""

from __future__ import annotations

from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, event, text

from audit import AuditLog, EntryFilter
from audit.storage import SUBJECT_SEGMENT, SqlStorage
from audit.storage.sql import SEGMENTS_A_STATEMENT
from gateway import db
from tests.audit.conftest import make_entry


def _subject_of(n: int) -> str:
    # Irregular on purpose: some segments hold several of the subject's entries, some none.
    return "st_mine" if n % 7 in (0, 3) or n % 11 == 5 else f"st_{n % 5}"


def _fill(log: AuditLog, count: int) -> None:
    log.append_many(
        make_entry(n, subject=_subject_of(n), outcome="deny" if n % 4 == 0 else "allow")
        for n in range(count)
    )


def _all_pages(log: AuditLog, where: EntryFilter, *, newest_first: bool, limit: int) -> list[int]:
    seen: list[int] = []
    cursor: int | None = None
    while True:
        if newest_first:
            page = log.entries(where, before=(1 << 62) if cursor is None else cursor, limit=limit)
        else:
            page = log.entries(where, after=cursor, limit=limit)
        seen.extend(e.index for e in page)
        if len(page) < limit:
            return seen
        cursor = page[-1].index


@pytest.mark.parametrize("newest_first", [True, False])
@pytest.mark.parametrize("limit", [1, 7, 500])
def test_a_subject_listing_pages_through_every_segment_in_order_and_finds_exactly_its_entries(
    log: AuditLog, newest_first: bool, limit: int
) -> None:
    # Segments of 4 entries: 300 entries span 75 of them, more than one statement searches.
    assert isinstance(log.storage, SqlStorage)
    log.storage.subject_segment = 4
    _fill(log, 300)
    assert 300 // 4 > SEGMENTS_A_STATEMENT
    expected = [n for n in range(300) if _subject_of(n) == "st_mine"]
    if newest_first:
        expected.reverse()
    got = _all_pages(log, EntryFilter(subject="st_mine"), newest_first=newest_first, limit=limit)
    assert got == expected
    # With another filter, and entries of the subject on both sides of a cursor.
    denied = [n for n in expected if n % 4 == 0]
    where = EntryFilter(subject="st_mine", outcome="deny")
    assert _all_pages(log, where, newest_first=newest_first, limit=limit) == denied
    assert [e.index for e in log.entries(EntryFilter(subject="st_mine"), after=150, before=200,
                                         limit=500)] == sorted(
        (n for n in expected if 150 < n < 200), reverse=True)  # fmt: skip
    assert log.entries(EntryFilter(subject="st_nobody")) == []
    assert log.entries(EntryFilter(subject="st_mine"), after=299) == []
    assert log.entries(EntryFilter(subject="st_mine"), before=0) == []


def test_a_subject_listing_is_answered_from_the_segment_index(
    log: AuditLog, audit_engine: Engine
) -> None:
    assert isinstance(log.storage, SqlStorage)
    assert log.storage.subject_segment == SUBJECT_SEGMENT
    _fill(log, 200)
    issued: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "audit_entries.subject" in statement:
            issued.append((statement, parameters))

    event.listen(audit_engine, "before_cursor_execute", record)
    try:
        mine = log.entries(EntryFilter(subject="st_mine"), before=1 << 62, limit=20)
    finally:
        event.remove(audit_engine, "before_cursor_execute", record)
    assert len(mine) == 20
    assert len(issued) == 1  # the log's one segment: one statement
    statement, parameters = issued[0]
    with audit_engine.connect() as conn:
        if audit_engine.dialect.name == "postgresql":
            # Few rows: without this, a sequential scan is cheaper than any index.
            conn.exec_driver_sql("SET enable_seqscan = off")
            plan = conn.exec_driver_sql("EXPLAIN " + statement, parameters).scalars().all()
        else:
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            plan = [row[-1] for row in rows]
    assert any("ix_audit_entries_subject_segment" in line for line in plan), plan


def test_the_segment_index_replaces_the_subject_index_and_the_downgrade_restores_it(
    database_url: str, log: AuditLog, audit_engine: Engine
) -> None:
    config = db.alembic_config("audit", database_url)

    def indexes() -> set[str]:
        # Read from the catalogue: SQLAlchemy's inspector leaves expression indexes out.
        with audit_engine.connect() as conn:
            if audit_engine.dialect.name == "postgresql":
                query = (
                    "SELECT indexname FROM pg_indexes WHERE tablename = 'audit_entries' "
                    "AND schemaname = current_schema()"
                )
            else:
                query = "SELECT name FROM sqlite_master WHERE tbl_name = 'audit_entries'"
            return set(conn.execute(text(query)).scalars())

    _fill(log, 40)
    expected = [n for n in range(40) if _subject_of(n) == "st_mine"]
    assert "ix_audit_entries_subject_segment" in indexes()
    assert "ix_audit_entries_subject" not in indexes()
    try:
        command.downgrade(config, "audit_0001")
        assert "ix_audit_entries_subject" in indexes()
        assert "ix_audit_entries_subject_segment" not in indexes()
        # Read in SQL: the log's code reads the current schema (audit_0004's column too).
        with audit_engine.connect() as conn:
            found = conn.execute(
                text("SELECT idx FROM audit_entries WHERE subject = 'st_mine' ORDER BY idx")
            ).scalars()
            assert list(found) == expected
    finally:
        command.upgrade(config, "heads")
    assert "ix_audit_entries_subject_segment" in indexes()
    assert [e.index for e in log.entries(EntryFilter(subject="st_mine"))] == expected
    with audit_engine.connect() as conn:  # the expression the storage's queries spell
        if audit_engine.dialect.name == "postgresql":
            definition = conn.execute(text(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                "AND indexname = 'ix_audit_entries_subject_segment'"
            )).scalar_one()  # fmt: skip
        else:
            definition = conn.execute(text(
                "SELECT sql FROM sqlite_master WHERE name = 'ix_audit_entries_subject_segment'"
            )).scalar_one()  # fmt: skip
    assert f"idx / {SUBJECT_SEGMENT}" in definition
