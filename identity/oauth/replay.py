"""Single-use JWT ids (RFC 7523 §3 item 7, RFC 9449 §11.1), shared by every worker process.

The database is the arbiter: the first INSERT of ``(kind, issuer, jti)`` wins, a second one hits
the primary key and is a replay. This survives restarts and needs no cross-process lock. Rows
are kept until the JWT they name has expired (after that the JWT is refused on ``exp`` anyway).
"""

from __future__ import annotations

import time

from sqlalchemy import Engine, delete, insert
from sqlalchemy.exc import IntegrityError

from identity.oauth.tables import used_jti

_PURGE_EVERY_S = 60.0


class ReplayStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._last_purge = 0.0

    def first_use(self, kind: str, issuer: str, jti: str, expires_at: int) -> bool:
        """True the first time this JWT id is presented, False on every later attempt."""
        if not jti or len(jti) > 255 or len(issuer) > 128:
            return False
        now = time.time()
        try:
            with self._engine.begin() as conn:
                if now - self._last_purge > _PURGE_EVERY_S:
                    self._last_purge = now
                    conn.execute(delete(used_jti).where(used_jti.c.expires_at < int(now)))
                conn.execute(
                    insert(used_jti).values(
                        kind=kind, issuer=issuer, jti=jti, expires_at=int(expires_at)
                    )
                )
        except IntegrityError:
            return False
        return True
