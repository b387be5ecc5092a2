"""Fixtures for the audit log: a migrated audit store on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from audit import AuditEntry, AuditLog, NoteSigner
from tests.gateway.conftest import world  # noqa: F401 - the HTTP test world (agencies, auditor)

ORIGIN = "sijill.test/audit"


def make_entry(
    n: int,
    *,
    subject: str | None = None,
    agency: str = "cnss",
    purpose: str | None = "amo_tadamon_enrolment",
    action: str = "read_attributes",
    outcome: str = "allow",
) -> AuditEntry:
    return AuditEntry(
        time_ns=1_795_946_400_000_000_000 + n,
        actor={"kind": "agency", "id": agency, "sector": "health"},
        action=action,
        subject=subject if subject is not None else f"st_{n % 7:04d}",
        fields=["household_size", "region"],
        purpose=purpose,
        legal_basis={"type": "law", "ref": "72.18 art. 10"},
        decision_id=f"d-{n}",
        policy_revision="rev-1",
        outcome=outcome,  # type: ignore[arg-type]
        reasons=[],
    )


@pytest.fixture
def audit_url(database_url: str) -> str:
    from alembic import command

    from gateway import db

    command.upgrade(db.alembic_config("audit", database_url), "heads")
    return database_url


@pytest.fixture
def audit_engine(audit_url: str) -> Iterator[Engine]:
    from gateway.db import make_engine

    engine = make_engine(audit_url)
    yield engine
    engine.dispose()


@pytest.fixture
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def signer(signing_key: Ed25519PrivateKey) -> NoteSigner:
    return NoteSigner(ORIGIN, signing_key)


@pytest.fixture
def log(audit_engine: Engine, signer: NoteSigner) -> Iterator[AuditLog]:
    log = AuditLog.for_engine(
        audit_engine, signer, ORIGIN, checkpoint_every_entries=4, checkpoint_every_seconds=3600
    )
    yield log
    log.close()
