"""Signing people in: citizens by IDCS + TOTP, officers and auditors by password + TOTP.

``Authenticator`` is the seam for later methods (the national e-ID card, a mobile ID): the
authorization endpoint only asks one for a :class:`SignedInUser` from the submitted form.

Guessing is throttled per account: after ``MAX_FAILURES`` wrong attempts the account is locked
for ``LOCK_S`` seconds, during which every attempt fails *without* checking the code, so a
six-digit TOTP cannot be brute-forced (10^6 codes, 5 tries per quarter hour). A TOTP code is
accepted once (RFC 6238 §5.2): the last used time step is stored, so a shoulder-surfed code
cannot be replayed within its window. Failures never say which factor was wrong.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any, Protocol

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from identity.oauth.secrets import SecretBox
from identity.oauth.server import SignedInUser
from identity.oauth.tables import citizen_credentials, users

MAX_FAILURES = 5
LOCK_S = 900
_IDCS = re.compile(r"^[0-9]{10}$")
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_CODE = re.compile(r"^[0-9]{6}$")


class LoginFailed(Exception):
    """Wrong credentials, unknown account or locked account: deliberately one error."""

    def __init__(self, locked: bool = False, reused: bool = False) -> None:
        super().__init__("sign-in failed")
        self.locked = locked
        # The right code, used once already (RFC 6238 §5.2): saying so tells only someone who
        # holds the current code that they must wait for the next one.
        self.reused = reused


class Authenticator(Protocol):
    """One way of signing a person in; ``kind`` is the kind of person it signs in."""

    kind: str

    def authenticate(self, form: Mapping[str, str]) -> SignedInUser: ...


class _Accounts:
    """Failure counting, lockout and TOTP checking shared by both account tables."""

    def __init__(
        self,
        engine: Engine,
        box: SecretBox,
        table: Table,
        key: str,
        *,
        max_failures: int = MAX_FAILURES,
        lock_s: int = LOCK_S,
    ) -> None:
        self._engine = engine
        self._box = box
        self._table = table
        self._key = key
        self.max_failures = max_failures
        self.lock_s = lock_s

    def _row(self, account: str) -> Any:
        with self._engine.connect() as conn:
            return (
                conn.execute(select(self._table).where(self._table.c[self._key] == account))
                .mappings()
                .first()
            )

    def _fail(self, account: str, *, reused: bool = False) -> LoginFailed:
        now = int(time.time())
        table, key = self._table, self._table.c[self._key]
        with self._engine.begin() as conn:
            count = conn.execute(
                update(table)
                .where(key == account)
                .values(failed_count=table.c.failed_count + 1)
                .returning(table.c.failed_count)
            ).scalar()
            if count is not None and count >= self.max_failures:
                conn.execute(
                    update(table)
                    .where(key == account)
                    .values(failed_count=0, locked_until=now + self.lock_s)
                )
                return LoginFailed(locked=True)
        return LoginFailed(reused=reused)

    def check(self, account: str, code: str, extra_ok: bool = True) -> Any:
        """Verify the TOTP code (and whatever ``extra_ok`` says) under throttling."""
        row = self._row(account)
        now = int(time.time())
        if row is None:
            raise LoginFailed()
        if row["locked_until"] > now:
            raise LoginFailed(locked=True)  # not even looked at: the lock must hold
        secret = self._box.open(row["totp_secret"], f"{self._table.name}:{account}")
        totp = pyotp.TOTP(secret)
        step = None
        if _CODE.match(code or ""):
            # One step either side for clock drift (RFC 6238 §5.2).
            for offset in (0, -1, 1):
                at = now + offset * totp.interval
                if totp.verify(code, for_time=at):
                    step = int(at // totp.interval)
                    break
        if step is None or not extra_ok:
            raise self._fail(account)
        if step <= row["last_totp_step"]:
            raise self._fail(account, reused=True)
        table, key = self._table, self._table.c[self._key]
        with self._engine.begin() as conn:
            # Compare-and-set on the step: two requests racing with one code cannot both pass.
            done = conn.execute(
                update(table)
                .where(key == account)
                .where(table.c.last_totp_step < step)
                .values(failed_count=0, last_totp_step=step)
            ).rowcount
        if not done:
            raise self._fail(account, reused=True)
        return row

    def seal(self, account: str, secret: str) -> bytes:
        return self._box.seal(secret, f"{self._table.name}:{account}")


class CitizenTotpAuthenticator:
    """Citizens: IDCS and a TOTP code from the app activated at enrolment."""

    kind = "citizen"

    def __init__(self, engine: Engine, box: SecretBox, **limits: int) -> None:
        self._engine = engine
        self._accounts = _Accounts(engine, box, citizen_credentials, "idcs", **limits)

    def enrol(self, idcs: str, secret: str | None = None) -> str:
        """Create (or replace) the citizen's TOTP secret (a new one, or ``secret`` that an
        activation confirmed); returns it (base32)."""
        if not _IDCS.match(idcs):
            raise ValueError("an IDCS is 10 digits")
        secret = secret or pyotp.random_base32()
        sealed = self._accounts.seal(idcs, secret)
        now = int(time.time())
        with self._engine.begin() as conn:
            changed = conn.execute(
                update(citizen_credentials)
                .where(citizen_credentials.c.idcs == idcs)
                .values(totp_secret=sealed, failed_count=0, locked_until=0, last_totp_step=0)
            ).rowcount
            if not changed:
                conn.execute(
                    insert(citizen_credentials).values(
                        idcs=idcs,
                        totp_secret=sealed,
                        failed_count=0,
                        locked_until=0,
                        last_totp_step=0,
                        created_at=now,
                    )
                )
        return secret

    def disable(self, idcs: str) -> bool:
        """Remove the citizen's TOTP secret (a lost phone): no code signs them in until they
        activate again. Returns whether there was one."""
        with self._engine.begin() as conn:
            return bool(
                conn.execute(
                    delete(citizen_credentials).where(citizen_credentials.c.idcs == idcs)
                ).rowcount
            )

    def authenticate(self, form: Mapping[str, str]) -> SignedInUser:
        idcs = form.get("idcs", "").strip()
        if not _IDCS.match(idcs):
            raise LoginFailed()
        self._accounts.check(idcs, form.get("code", "").strip())
        return SignedInUser(idcs, "citizen", int(time.time()), ("otp",))


class StaffAuthenticator:
    """Registration officers or CNDP auditors: argon2id password and a TOTP code."""

    def __init__(self, engine: Engine, box: SecretBox, kind: str, **limits: int) -> None:
        if kind not in {"officer", "auditor"}:
            raise ValueError("kind must be officer or auditor")
        self.kind = kind
        self._engine = engine
        self._hasher = PasswordHasher()
        self._accounts = _Accounts(engine, box, users, "username", **limits)

    def add_user(self, username: str, password: str) -> str:
        """Create the account; returns the TOTP secret to activate (base32)."""
        if not _USERNAME.match(username):
            raise ValueError("a username is 2-64 lowercase letters, digits, . _ -")
        if len(password) < 12:
            raise ValueError("a password has at least 12 characters")
        secret = pyotp.random_base32()
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(users).values(
                        username=username,
                        kind=self.kind,
                        password_hash=self._hasher.hash(password),
                        totp_secret=self._accounts.seal(username, secret),
                        failed_count=0,
                        locked_until=0,
                        last_totp_step=0,
                        disabled=False,
                        created_at=int(time.time()),
                    )
                )
        except IntegrityError:
            raise ValueError("this username exists already") from None
        return secret

    def authenticate(self, form: Mapping[str, str]) -> SignedInUser:
        username = form.get("username", "").strip()
        if not _USERNAME.match(username):
            raise LoginFailed()
        row = self._accounts._row(username)
        if row is None or row["kind"] != self.kind or row["disabled"]:
            raise LoginFailed()
        password_ok: bool
        try:
            password_ok = self._hasher.verify(row["password_hash"], form.get("password", ""))
        except (VerificationError, InvalidHashError):
            password_ok = False
        try:
            self._accounts.check(username, form.get("code", "").strip(), extra_ok=password_ok)
        except LoginFailed as failure:
            # "Already used" would tell a holder of a seen code that the password is right.
            raise LoginFailed(locked=failure.locked) from None
        return SignedInUser(username, self.kind, int(time.time()), ("pwd", "otp"))
