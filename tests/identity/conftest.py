"""A real register over a migrated database (SQLite file or PostgreSQL schema) and a real vault
with file keys: the same parts the gateway builds."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from gateway.db import make_engine
from identity import Idcs, Register, SectorPseudonyms
from rsu import resolve_subjects
from vault import DecisionVerifier, FileKeyProvider, Vault


@pytest.fixture
def engine(migrated_urls: dict[str, str]) -> Iterator[Engine]:
    engine = make_engine(migrated_urls["main"])
    yield engine
    engine.dispose()


@pytest.fixture
def vault(engine: Engine, tmp_path: Path) -> Vault:
    verifier = DecisionVerifier(Ed25519PrivateKey.generate().public_key())
    return Vault(engine, FileKeyProvider(tmp_path / "keys"), verifier)


@pytest.fixture
def register(engine: Engine, vault: Vault) -> Register:
    return Register(engine, vault)


@pytest.fixture
def sector_pseudonyms(engine: Engine, vault: Vault) -> SectorPseudonyms:
    return SectorPseudonyms(engine, vault)


@pytest.fixture
def resolve(engine: Engine) -> Callable[[str, str], Idcs]:
    """The IDCS behind a sector's pseudonym, as the gateway resolves it for an agency."""

    def resolve(sector: str, pseudonym: str) -> Idcs:
        return resolve_subjects(engine, sector, pseudonym).idcs

    return resolve
