"""identity/activation.py: one-time activation codes, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select

from gateway.db import make_engine
from identity.activation import ActivationCodes, ActivationFailed
from identity.oauth.secrets import SecretBox
from identity.tables import activation_codes

IDCS = "2345678901"


@pytest.fixture
def codes(migrated_urls: dict[str, str], tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = make_engine(migrated_urls["main"], pool_size=2)
    yield ActivationCodes(engine, SecretBox(tmp_path / "box.key"), max_failures=3)
    engine.dispose()


def test_a_code_opens_a_secret_once_a_first_totp_code_matches(codes: ActivationCodes) -> None:
    issued = codes.issue(IDCS, "office-casa")
    secret = codes.begin(IDCS, issued.code)
    assert codes.begin(IDCS, issued.code.lower().replace("-", " ")) == secret  # same secret
    assert codes.confirm(IDCS, issued.code, pyotp.TOTP(secret).now()) == secret
    with pytest.raises(ActivationFailed):
        codes.begin(IDCS, issued.code)  # used up


def test_the_code_is_stored_as_its_hash(codes: ActivationCodes) -> None:
    issued = codes.issue(IDCS, "office-casa")
    with codes._engine.connect() as conn:
        stored = conn.execute(select(activation_codes)).mappings().one()
    assert issued.code.replace("-", "") not in str(dict(stored))


def test_a_wrong_totp_code_installs_nothing(codes: ActivationCodes) -> None:
    issued = codes.issue(IDCS, "office-casa")
    secret = codes.begin(IDCS, issued.code)
    wrong = "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"
    with pytest.raises(ActivationFailed):
        codes.confirm(IDCS, issued.code, wrong)
    assert codes.confirm(IDCS, issued.code, pyotp.TOTP(secret).now()) == secret


def test_wrong_codes_lock_the_activation(codes: ActivationCodes) -> None:
    issued = codes.issue(IDCS, "office-casa")
    for _ in range(3):
        with pytest.raises(ActivationFailed):
            codes.begin(IDCS, "AAAA-BBBB-CCCC")
    with pytest.raises(ActivationFailed):
        codes.begin(IDCS, issued.code)  # locked: even the right code


def test_a_new_code_replaces_the_old_one(codes: ActivationCodes) -> None:
    first = codes.issue(IDCS, "office-casa")
    second = codes.issue(IDCS, "office-casa")
    with pytest.raises(ActivationFailed):
        codes.begin(IDCS, first.code)
    assert codes.begin(IDCS, second.code)


def test_an_expired_code_opens_nothing(migrated_urls: dict[str, str], tmp_path: Path) -> None:
    engine = make_engine(migrated_urls["main"], pool_size=2)
    try:
        codes = ActivationCodes(engine, SecretBox(tmp_path / "box.key"), ttl_s=-1)
        issued = codes.issue(IDCS, "office-casa")
        with pytest.raises(ActivationFailed):
            codes.begin(IDCS, issued.code)
    finally:
        engine.dispose()
