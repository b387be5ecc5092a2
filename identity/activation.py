"""One-time activation codes: how a citizen enrolled at a registration office gets a sign-in.

The office issues a code (returned to it, and sent to the citizen); the citizen enters IDCS
and code on the portal's activation page, which creates a TOTP secret, shows it as a QR code
and installs it only once the citizen proves with a first code that the app holds it. A code
is stored as its SHA-256 (it has 60 random bits: a copy of the table cannot be brute-forced
back into codes in useful time), expires after ``TTL_S``, works once, and is locked after
``MAX_FAILURES`` wrong attempts. Issuing a new one replaces the old one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

import pyotp
from sqlalchemy import (
    Engine,
    delete,
    insert,
    select,
    update,
)

from identity.oauth.secrets import SecretBox
from identity.tables import activation_codes

TTL_S = 14 * 86400
MAX_FAILURES = 5
# 32 symbols without 0/O, 1/I/L: 12 of them are 60 bits, read aloud or typed without doubt.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_IDCS = re.compile(r"^[0-9]{10}$")
_CODE = re.compile(r"^[0-9]{6}$")


class ActivationFailed(Exception):
    """Unknown IDCS, wrong, expired, used or locked code: deliberately one error."""


@dataclass(frozen=True)
class IssuedCode:
    idcs: str
    code: str  # grouped by four for reading: ABCD-EFGH-JKMN
    expires_at: int


def normalise(code: str) -> str:
    return re.sub(r"[\s-]", "", code).upper()


def _hash(code: str) -> str:
    return hashlib.sha256(normalise(code).encode()).hexdigest()


class ActivationCodes:
    def __init__(
        self,
        engine: Engine,
        box: SecretBox,
        *,
        ttl_s: int = TTL_S,
        max_failures: int = MAX_FAILURES,
    ) -> None:
        self._engine = engine
        self._box = box
        self.ttl_s = ttl_s
        self.max_failures = max_failures

    def issue(self, idcs: str, issued_by: str) -> IssuedCode:
        """A new code for ``idcs``, replacing any earlier one."""
        if not _IDCS.match(idcs):
            raise ValueError("an IDCS is 10 digits")
        raw = "".join(secrets.choice(ALPHABET) for _ in range(12))
        now = int(time.time())
        row = {
            "idcs": idcs,
            "code_hash": _hash(raw),
            "issued_by": issued_by[:64],
            "issued_at": now,
            "expires_at": now + self.ttl_s,
            "failed_count": 0,
            "pending_secret": None,
        }
        with self._engine.begin() as conn:
            conn.execute(delete(activation_codes).where(activation_codes.c.idcs == idcs))
            conn.execute(insert(activation_codes).values(**row))
        code = "-".join(raw[i : i + 4] for i in range(0, 12, 4))
        return IssuedCode(idcs, code, now + self.ttl_s)

    def withdraw(self, idcs: str) -> bool:
        """Drop the person's code, used or not (an erased person signs in no more); whether
        there was one."""
        with self._engine.begin() as conn:
            gone = conn.execute(delete(activation_codes).where(activation_codes.c.idcs == idcs))
            return bool(gone.rowcount)

    def _check(self, idcs: str, code: str) -> bytes | None:
        """The row's pending secret (sealed) if ``code`` opens it, else ActivationFailed."""
        if not _IDCS.match(idcs or ""):
            raise ActivationFailed()
        with self._engine.connect() as conn:
            row = (
                conn.execute(select(activation_codes).where(activation_codes.c.idcs == idcs))
                .mappings()
                .first()
            )
        if row is None or row["expires_at"] <= time.time():
            raise ActivationFailed()
        if row["failed_count"] >= self.max_failures:
            raise ActivationFailed()  # locked: not even compared
        if not hmac.compare_digest(row["code_hash"], _hash(code or "")):
            with self._engine.begin() as conn:
                conn.execute(
                    update(activation_codes)
                    .where(activation_codes.c.idcs == idcs)
                    .values(failed_count=activation_codes.c.failed_count + 1)
                )
            raise ActivationFailed()
        pending: bytes | None = row["pending_secret"]
        return pending

    def begin(self, idcs: str, code: str) -> str:
        """The TOTP secret to show (base32): made on first use of the code, the same after."""
        sealed = self._check(idcs, code)
        if sealed is not None:
            return self._box.open(sealed, f"activation:{idcs}")
        secret = pyotp.random_base32()
        with self._engine.begin() as conn:
            conn.execute(
                update(activation_codes)
                .where(activation_codes.c.idcs == idcs)
                .values(pending_secret=self._box.seal(secret, f"activation:{idcs}"))
            )
        return secret

    def confirm(self, idcs: str, code: str, totp_code: str) -> str:
        """The secret, once the app's first code proves it holds it; the code is then used
        up. Raises ActivationFailed (a wrong TOTP code counts as a failure)."""
        sealed = self._check(idcs, code)
        if sealed is None:
            raise ActivationFailed()
        secret = self._box.open(sealed, f"activation:{idcs}")
        if not _CODE.match(totp_code or "") or not pyotp.TOTP(secret).verify(
            totp_code, valid_window=1
        ):
            with self._engine.begin() as conn:
                conn.execute(
                    update(activation_codes)
                    .where(activation_codes.c.idcs == idcs)
                    .values(failed_count=activation_codes.c.failed_count + 1)
                )
            raise ActivationFailed()
        with self._engine.begin() as conn:
            used = conn.execute(
                delete(activation_codes).where(
                    activation_codes.c.idcs == idcs, activation_codes.c.code_hash == _hash(code)
                )
            ).rowcount
        if not used:
            raise ActivationFailed()  # a concurrent confirmation used it first
        return secret
