"""Tamper evidence: any single change to the stored log makes ``verify`` fail and name the
first altered index, whether the change is made in an export or in the database itself."""

from __future__ import annotations

import copy
import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from audit import AuditLog, Export, NoteSigner, verify
from audit.merkle import leaf_hash
from audit.verify import ExportRow
from tests.audit.conftest import ORIGIN, make_entry

SIZE = 37


def _filled(log: AuditLog, size: int = SIZE) -> Export:
    for n in range(size):
        log.append(make_entry(n))
    log.issue_checkpoint()
    return Export.from_lines(log.export_lines())


def _edited(row: ExportRow, *, rehash: bool) -> ExportRow:
    data = json.loads(row.entry)
    data["purpose"] = "covert_profiling"
    import rfc8785

    raw = rfc8785.dumps(data)
    return ExportRow(row.index, raw, leaf_hash(raw) if rehash else row.leaf_hash)


def _renumber(rows: list[ExportRow]) -> list[ExportRow]:
    return [ExportRow(i, r.entry, r.leaf_hash) for i, r in enumerate(rows)]


def test_an_untouched_log_verifies(log: AuditLog) -> None:
    report = verify(_filled(log), verifier_key=log.verifier_key)
    assert report.ok and report.tree_size == SIZE and report.first_bad_index is None
    assert report.checkpoints_verified >= SIZE // 4


def test_any_single_tampering_fails_and_names_the_index(log: AuditLog) -> None:
    pristine = _filled(log)
    key = log.verifier_key

    @settings(max_examples=120, deadline=None)
    @given(
        kind=st.sampled_from(
            [
                "edit",
                "edit-rehash",
                "delete",
                "delete-renumber",
                "insert",
                "insert-renumber",
                "swap",
                "swap-rehash",
            ]
        ),
        i=st.integers(0, SIZE - 1),
        j=st.integers(0, SIZE - 1),
    )
    def check(kind: str, i: int, j: int) -> None:
        export = copy.deepcopy(pristine)
        rows = export.rows
        expected = i
        if kind.startswith("edit"):
            rows[i] = _edited(rows[i], rehash=kind == "edit-rehash")
        elif kind == "delete":
            del rows[i]
        elif kind == "delete-renumber":
            del rows[i]
            export.rows = _renumber(rows)
        elif kind.startswith("insert"):
            forged = make_entry(10_000 + i).canonical()
            rows.insert(i, ExportRow(i, forged, leaf_hash(forged)))
            if kind == "insert-renumber":
                export.rows = _renumber(rows)
        else:  # two rows trade places
            if i == j:
                j = (i + 1) % SIZE
            i, j = min(i, j), max(i, j)
            expected = i
            rows[i], rows[j] = rows[j], rows[i]
            if kind == "swap-rehash":  # the forger also fixes the index column
                export.rows = _renumber(rows)
        report = verify(export, verifier_key=key)
        assert not report.ok
        assert report.first_bad_index == expected, report.problem

    check()


def test_a_forged_key_cannot_re_sign_a_rewritten_log(log: AuditLog) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    export = _filled(log)
    forger = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
    export.checkpoints = [forger.sign(ORIGIN, SIZE, b"\0" * 32, None).note]
    export.verifier_key = str(forger.verifier)
    report = verify(export, verifier_key=log.verifier_key)
    assert not report.ok and "trusted key" in (report.problem or "")


def test_a_log_shorter_than_a_trusted_checkpoint_fails(log: AuditLog) -> None:
    export = _filled(log)
    trusted = log.issue_checkpoint().note
    export.rows = export.rows[:30]
    export.checkpoints = []
    report = verify(export, trusted, verifier_key=log.verifier_key)
    assert not report.ok and report.first_bad_index == 30


def _bypass_guard(engine: Engine) -> None:
    """An insider with DBA rights switches the append-only triggers off first."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_entries DISABLE TRIGGER USER"))
        else:
            conn.execute(text("DROP TRIGGER audit_entries_no_update"))
            conn.execute(text("DROP TRIGGER audit_entries_no_delete"))


def test_an_edit_in_the_database_is_found_at_its_index(log: AuditLog, audit_engine: Engine) -> None:
    _filled(log)
    _bypass_guard(audit_engine)
    with audit_engine.begin() as conn:
        row = conn.execute(text("SELECT entry FROM audit_entries WHERE idx = 17")).one()
        forged = re.sub(r'"outcome":"allow"', '"outcome":"deny"', row.entry)
        conn.execute(
            text("UPDATE audit_entries SET entry = :e, leaf_hash = :h WHERE idx = 17"),
            {"e": forged, "h": leaf_hash(forged.encode())},
        )
    report = verify(Export.from_lines(log.export_lines()), verifier_key=log.verifier_key)
    assert not report.ok and report.first_bad_index == 17


def test_a_deletion_in_the_database_is_found_at_its_index(
    log: AuditLog, audit_engine: Engine
) -> None:
    _filled(log)
    _bypass_guard(audit_engine)
    with audit_engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_entries WHERE idx = 5"))
    report = verify(Export.from_lines(log.export_lines()), verifier_key=log.verifier_key)
    assert not report.ok and report.first_bad_index == 5
