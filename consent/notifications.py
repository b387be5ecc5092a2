"""A citizen's choice to be told of the uses of their record, and the queueing of those notices.

The choice is filed under the person's audit tag (the keyed hash their audit entries carry) and
names the vault record that holds their address; this room never sees the address. Notices are
queued in the one outbox (:mod:`consent.outbox`) with the delivery job's place in the audit log
moved in the same transaction, so an access is announced once, even when the job stops between
reading the log and writing the notices.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal, cast, get_args

from sqlalchemy import Engine, RowMapping, delete, func, insert, select, update

from consent import tables
from consent.outbox import ACCESS_NOTICE

Channel = Literal["email", "sms"]
# all: every access by an agency, allowed or refused; denials: refused ones only;
# consent: accesses that rest on the person's consent (Law 09.08 art. 4).
Scope = Literal["all", "denials", "consent"]
Language = Literal["ar", "fr", "en"]
CHANNELS: tuple[str, ...] = get_args(Channel)
SCOPES: tuple[str, ...] = get_args(Scope)
CURSOR = "access-notices"


@dataclass(frozen=True)
class Preference:
    subject: str  # the person's audit tag
    contact_subject: str  # the vault record of their address
    channel: Channel
    scope: Scope
    language: Language
    created_at_ns: int
    updated_at_ns: int

    def wants(self, outcome: str, basis_type: str | None) -> bool:
        """Whether an agency's use with this outcome and legal basis is one to announce."""
        if outcome not in {"allow", "deny"}:
            return False  # a failure of the gateway (policy down) used nothing
        if self.scope == "denials":
            return outcome == "deny"
        if self.scope == "consent":
            return outcome == "allow" and basis_type == "consent"
        return True


class NotificationPreferences:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, subject: str) -> Preference | None:
        t = tables.notification_preferences
        with self._engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.subject == subject)).first()
        return _preference(row._mapping) if row is not None else None

    def of_subjects(self, subjects: Collection[str]) -> dict[str, Preference]:
        """The choices of those of ``subjects`` who made one."""
        if not subjects:
            return {}
        t = tables.notification_preferences
        with self._engine.connect() as conn:
            rows = conn.execute(select(t).where(t.c.subject.in_(sorted(subjects)))).all()
        return {r.subject: _preference(r._mapping) for r in rows}

    def earliest(self) -> int | None:
        """When the oldest choice standing was made (None: nobody chose to be told)."""
        t = tables.notification_preferences
        with self._engine.connect() as conn:
            return conn.execute(select(func.min(t.c.created_at_ns))).scalar()

    def set(
        self,
        subject: str,
        *,
        contact_subject: str,
        channel: Channel,
        scope: Scope,
        language: Language,
    ) -> Preference:
        """Create or replace ``subject``'s choice (its address record stays the same one)."""
        now = time.time_ns()
        t = tables.notification_preferences
        values = {"channel": channel, "scope": scope, "language": language, "updated_at_ns": now}
        with self._engine.begin() as conn:
            changed = conn.execute(
                update(t).where(t.c.subject == subject).values(**values)
            ).rowcount
            if changed == 0:
                conn.execute(
                    insert(t).values(
                        subject=subject,
                        contact_subject=contact_subject,
                        created_at_ns=now,
                        **values,
                    )
                )
        found = self.get(subject)
        assert found is not None
        return found

    def remove(self, subject: str) -> Preference | None:
        """Forget ``subject``'s choice and drop the notices not yet sent to them, in one
        transaction; the choice that was (its address record is the caller's to erase)."""
        found = self.get(subject)
        if found is None:
            return None
        t, o = tables.notification_preferences, tables.outbox
        with self._engine.begin() as conn:
            conn.execute(delete(t).where(t.c.subject == subject))
            conn.execute(delete(o).where(o.c.recipient == subject, o.c.delivered_at_ns.is_(None)))
        return found

    # -- the delivery job's place in the audit log -------------------------------------------

    def cursor(self) -> int | None:
        """The index of the last audit entry turned into notices; None before the first run."""
        c = tables.notification_cursor
        with self._engine.connect() as conn:
            return conn.execute(select(c.c.position).where(c.c.name == CURSOR)).scalar()

    def queue(
        self, notices: Sequence[tuple[str, str, int]], *, seen: int | None, upto: int
    ) -> bool:
        """Queue ``notices`` ((recipient tag, body, not before) triples: a notice is due from
        that instant in nanoseconds, or at once when it has passed) and move the cursor from
        ``seen`` to ``upto``, together; False (nothing written) when another run moved it
        first."""
        now = time.time_ns()
        c = tables.notification_cursor
        with self._engine.begin() as conn:
            if seen is None:
                exists = conn.execute(select(c.c.name).where(c.c.name == CURSOR)).first()
                if exists is not None:
                    return False
                conn.execute(insert(c).values(name=CURSOR, position=upto, updated_at_ns=now))
            else:
                moved = conn.execute(
                    update(c)
                    .where(c.c.name == CURSOR, c.c.position == seen)
                    .values(position=upto, updated_at_ns=now)
                ).rowcount
                if moved != 1:
                    return False
            if notices:
                conn.execute(
                    insert(tables.outbox),
                    [
                        {
                            "recipient": recipient,
                            "event": ACCESS_NOTICE,
                            "body": body,
                            "attempts": 0,
                            "next_attempt_ns": max(now, not_before),
                        }
                        for recipient, body, not_before in notices
                    ],
                )
        return True


def _preference(row: RowMapping) -> Preference:
    return Preference(
        subject=str(row["subject"]),
        contact_subject=str(row["contact_subject"]),
        channel=cast(Channel, row["channel"]),
        scope=cast(Scope, row["scope"]),
        language=cast(Language, row["language"]),
        created_at_ns=int(cast(int, row["created_at_ns"])),
        updated_at_ns=int(cast(int, row["updated_at_ns"])),
    )
