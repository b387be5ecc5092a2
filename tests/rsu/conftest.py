"""A real RSU: register, vault (file keys), audit log and decision issuer over a migrated
database (SQLite file or PostgreSQL schema), the same parts the gateway builds."""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from audit import AuditLog
from gateway.db import make_engine
from gateway.keys import build_audit_log
from gateway.services import build_household_register
from identity import PersonIn, Register
from identity.synth import generate
from policies import DecisionIssuer, PolicyResult
from rsu import HouseholdRegister
from rsu.synthetic import group_households, household_request

# The authorization server's app, client registry and HTTP client, for the office route tests.
from tests.identity.oauth.conftest import api, oauth, oauth_app  # noqa: F401
from vault import Decision, DecisionVerifier, FileKeyProvider, Vault
from vault import tables as t
from vault.envelope import encrypt_record


@dataclass
class Rsu:
    engine: Engine
    vault: Vault
    register: Register
    audit: AuditLog
    households: HouseholdRegister
    issuer: DecisionIssuer

    def decision(self, subject: str, action: str) -> Decision:
        """A genuine sealed decision, as gateway.authz would obtain it from the policy."""
        result = PolicyResult(
            allow=True,
            fields=(),
            obligations={},
            reasons=[],
            legal_basis=None,
            decision_id="test-" + secrets.token_hex(4),
            policy_revision="test",
        )
        return self.issuer.seal(
            result, subject=subject, action=action, purpose="test", audit_index=0, requested=()
        )

    def seal(self, subject: str, values: Mapping[str, object]) -> None:
        """Write ``values`` into a record as the vault seals them (under its current data
        key), replacing those fields, past the record schema: a record as an earlier release,
        or damage, left it."""
        with self.vault.engine.begin() as conn:
            key_id, aead = self.vault.records.current_keys(conn, [subject])[subject]
            t.write_fields(
                conn,
                encrypt_record(aead, key_id, subject, values),
                [(subject, name) for name in values],
            )

    def enrol(self, persons: int, households: int, seed: int = 7) -> list[list[tuple[str, Any]]]:
        """Enrol a synthetic population; its households as (IDCS, synth record) groups."""
        records = list(generate(persons, households, seed=seed))
        people = [
            PersonIn.model_validate({k: v for k, v in r.items() if k not in ("household", "role")})
            for r in records
        ]
        issued = self.register.enrol_many(people)
        return list(group_households(records, issued))

    def populate(self, persons: int, households: int, seed: int = 7) -> list[str]:
        """Enrol and register synthetic households; their household ids."""
        rng = random.Random(seed)
        ids = []
        for group in self.enrol(persons, households, seed):
            members, declaration = household_request(rng, group)
            ids.append(self.households.register_household(members, declaration).household_id)
        return ids


@pytest.fixture
def engine(migrated_urls: dict[str, str]) -> Iterator[Engine]:
    engine = make_engine(migrated_urls["main"])
    yield engine
    engine.dispose()


@pytest.fixture
def rsu(engine: Engine, settings, tmp_path) -> Rsu:  # type: ignore[no-untyped-def]
    key = Ed25519PrivateKey.generate()
    vault = Vault(engine, FileKeyProvider(tmp_path / "keys"), DecisionVerifier(key.public_key()))
    register = Register(engine, vault)
    settings.prepare_data_dir()
    audit = build_audit_log(settings, engine)
    households = build_household_register(settings, engine, vault, register, audit)
    return Rsu(engine, vault, register, audit, households, DecisionIssuer(key))
