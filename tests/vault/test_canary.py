"""Canary scan: personal data never reaches the disk or the logs in any readable encoding.

Records carry unique canary strings; afterwards every byte of the SQLite files (main file, WAL
and shared memory) or of a ``pg_dump`` of the test's schema, and every captured log line, is
searched for each canary as text, hex and base64 (at all three base64 alignments).
"""

from __future__ import annotations

import base64
import logging
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from tests.vault.conftest import PolicyStandIn, sample_person
from vault import Vault, rotate
from vault import tables as t


def encodings(value: bytes) -> list[bytes]:
    found = [value, value.hex().encode(), value.hex().upper().encode()]
    for shift in range(3):
        chunk = value[shift:]
        chunk = chunk[: len(chunk) // 3 * 3]
        found.append(base64.b64encode(chunk))
        found.append(base64.urlsafe_b64encode(chunk))
    return found


def storage_bytes(vault: Vault, database_url: str) -> bytes:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database
        db = Path(url.database)
        files = sorted(db.parent.glob(db.name + "*"))
        assert files, "the SQLite files exist"
        return b"".join(f.read_bytes() for f in files)
    with vault.engine.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    pg_dump = shutil.which("pg_dump") or next(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"))
    out = subprocess.run(
        [
            str(pg_dump),
            "--schema",
            schema,
            "--no-owner",
            "-h",
            url.host or "127.0.0.1",
            "-p",
            str(url.port or 5432),
            "-U",
            url.username or "postgres",
            url.database or "",
        ],
        check=True,
        capture_output=True,
    )
    return out.stdout


def test_no_canary_in_storage_or_logs(
    vault: Vault,
    policy: PolicyStandIn,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    # SQLAlchemy's engine log prints every statement's parameters: if plaintext reached SQL,
    # it would show here.
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    canaries: list[str] = []
    records = []
    for i in range(50):
        mark = uuid.uuid4().hex[:12]
        person = sample_person()
        person |= {
            "given_name_lat": f"Canary{mark}",
            "given_name_ar": f"كناري{mark}",
            "address": f"{mark} rue du Canari",
            "cnie": f"CN{mark[:10]}",
            "phone": f"+2126{int(mark[:8], 16) % 10**8:08d}",
        }
        canaries += [
            str(person[k]) for k in ("given_name_lat", "given_name_ar", "address", "cnie", "phone")
        ]
        records.append((f"subject-{i}", "person", person))
    vault.store_many(records[:25])
    for record in records[25:]:
        vault.store(*record)
    names = tuple(sample_person())
    vault.reveal_many([(s, names, policy.seal(s, names)) for s, _, _ in records])
    for _, _, person in records:
        vault.blind_index("cnie", str(person["cnie"]))
    rotate(vault, batch_size=7)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)

    stored = storage_bytes(vault, database_url)
    logs = (caplog.text + "".join(capfd.readouterr())).encode()
    # The scan reads what it should: subject ids are stored (and logged) in the clear.
    assert b"subject-42" in stored and b"subject-42" in logs
    for canary in canaries:
        for needle in encodings(canary.encode()):
            assert needle not in stored, "a canary reached the database"
            assert needle not in logs, "a canary reached the logs"


def test_erased_subjects_wrapped_key_is_gone_from_storage(vault: Vault, database_url: str) -> None:
    vault.store_many([(f"s-{i}", "person", sample_person(str(i))) for i in range(20)])
    with vault.engine.connect() as conn:
        wrapped = bytes(
            conn.execute(
                select(t.data_keys.c.wrapped).where(t.data_keys.c.subject == "s-3")
            ).scalar_one()
        )

    # SQLite files hold the bytes as they are; a pg_dump shows bytea as hex.
    def present(stored: bytes) -> bool:
        return wrapped in stored or wrapped.hex().encode() in stored

    assert present(storage_bytes(vault, database_url))
    vault.erase("s-3")
    assert not present(storage_bytes(vault, database_url))
