from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from sqlalchemy import Engine

from consent import ConsentService
from gateway.db import make_engine
from policies.registry import ProcessingRegistry


@pytest.fixture
def engine(migrated_urls: dict[str, str]) -> Iterator[Engine]:
    e = make_engine(migrated_urls["main"])
    yield e
    e.dispose()


@pytest.fixture(scope="session")
def signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def public_jwks(signing_key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    jwk = ECAlgorithm.to_jwk(signing_key.public_key(), as_dict=True)
    return {"keys": [{**jwk, "kid": "test-1", "alg": "ES256", "use": "sig"}]}


@pytest.fixture
def service(engine: Engine, signing_key: ec.EllipticCurvePrivateKey) -> ConsentService:
    def sign(claims: dict[str, Any]) -> str:
        return jwt.encode(claims, signing_key, algorithm="ES256", headers={"kid": "test-1"})

    return ConsentService(engine, ProcessingRegistry.load(), sign)
