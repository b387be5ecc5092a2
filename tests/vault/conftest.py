"""Vault fixtures: a real SoftHSM2 token, both key providers, a migrated vault store on SQLite
and PostgreSQL, and a policy-layer stand-in that seals decisions with its own Ed25519 key."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from vault import Decision, DecisionVerifier, FileKeyProvider, KeyProvider, Vault
from vault.decision import signing_payload

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
TOKEN_LABEL = "sijill-tests"
TOKEN_PIN = "4321-user"


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A SoftHSM2 token initialised in a temporary directory, once per test session.

    SOFTHSM2_CONF must be set before the module is first loaded (SoftHSM reads it in
    C_Initialize, and python-pkcs11 keeps loaded libraries for the process's life).
    """
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n"
        "log.level = ERROR\nslots.removable = false\n"
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            TOKEN_LABEL,
            "--pin",
            TOKEN_PIN,
            "--so-pin",
            "8765-so",
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
    )
    return {"module": SOFTHSM_MODULE, "label": TOKEN_LABEL, "pin": TOKEN_PIN}


def make_provider(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> KeyProvider:
    if kind == "file":
        return FileKeyProvider(tmp_path / "keys")
    from vault import Pkcs11KeyProvider

    token = request.getfixturevalue("softhsm_token")
    # A label prefix per test: every test sees only its own KEK versions on the shared token.
    return Pkcs11KeyProvider(
        token["module"], token["label"], token["pin"], prefix=f"t{uuid.uuid4().hex[:12]}"
    )


@pytest.fixture(params=["file", "pkcs11"])
def key_provider(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyProvider]:
    provider = make_provider(request.param, tmp_path, request)
    yield provider
    provider.close()


@pytest.fixture
def vault_engine(database_url: str) -> Iterator[Engine]:
    from gateway import db

    db.upgrade({"main": database_url, "vault": database_url, "audit": database_url})
    engine = db.make_engine(database_url)
    yield engine
    engine.dispose()


class PolicyStandIn:
    """Seals decisions the way policies.DecisionIssuer does: Ed25519 over signing_payload."""

    def __init__(self) -> None:
        self.private_key = Ed25519PrivateKey.generate()
        self.verifier = DecisionVerifier(self.private_key.public_key())

    def seal(
        self,
        subject: str,
        fields: Sequence[str],
        obligations: Mapping[str, str] | None = None,
        *,
        ttl_s: float = 30,
        issued_at_ns: int | None = None,
        audit_index: int = 7,
        requested: Sequence[str] | None = None,
    ) -> Decision:
        now = time.time_ns() if issued_at_ns is None else issued_at_ns
        decision = Decision(
            decision_id=uuid.uuid4().hex,
            subject=subject,
            action="read_attributes",
            purpose="amo_tadamon_enrolment",
            fields=tuple(sorted(fields)),
            requested=tuple(sorted(fields if requested is None else requested)),
            obligations=dict(obligations or {}),
            legal_basis={"type": "law", "ref": "72.18 art. 8"},
            policy_revision="rev-test",
            audit_index=audit_index,
            issued_at_ns=now,
            expires_at_ns=now + int(ttl_s * 1e9),
        )
        return dataclasses.replace(
            decision, signature=self.private_key.sign(signing_payload(decision))
        )


@pytest.fixture
def policy() -> PolicyStandIn:
    return PolicyStandIn()


@pytest.fixture
def vault(vault_engine: Engine, key_provider: KeyProvider, policy: PolicyStandIn) -> Vault:
    return Vault(vault_engine, key_provider, policy.verifier)


def sample_person(tag: str = "") -> dict[str, object]:
    return {
        "given_name_ar": "فاطمة" + tag,
        "family_name_ar": "العلوي",
        "given_name_lat": "Fatima" + tag,
        "family_name_lat": "Alaoui",
        "sex": "F",
        "birth_date": "1987-03-21",
        "birth_place": "Fès",
        "cnie": "CD123456",
        "nationality": "MAR",
        "residency_status": "citizen",
        "address": "12 derb Sidi Ahmed, Fès",
        "region": "Fès-Meknès",
        "province": "Fès",
        "phone": "0612345678",
    }


Sealer = Callable[..., Decision]
