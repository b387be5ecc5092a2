"""Entries serialised and hashed before the sequencer: one at a time, or many alike from a
template (a national rescoring makes one entry a household)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from audit.entry import AuditEntry
from audit.errors import InvalidEntry
from audit.merkle import leaf_hash
from audit.storage import StoredEntry


def prepare_entry(entry: AuditEntry) -> StoredEntry:
    """``entry`` serialised and hashed for :meth:`audit.AuditLog.append_many`: the costly part of an
    append, done by the caller (in a worker process, say), outside the sequencer. Its index is
    -1 until the sequencer assigns one."""
    data = entry.canonical()
    # The index is filled in by the sequencer.
    return StoredEntry(
        index=-1,
        leaf_hash=leaf_hash(data),  # hashed by the caller, outside the sequencer's lock
        entry=data,
        time_ns=entry.time_ns,
        subject=entry.subject,
        actor_kind=entry.actor["kind"],
        actor_id=entry.actor["id"],
        action=entry.action,
        purpose=entry.purpose,
        outcome=entry.outcome,
        official=entry.actor.get("official"),
        court_order=entry.court_order["reference"] if entry.court_order else None,
    )


# What a template value may hold: printable ASCII that JSON writes as it is (no quote, no
# backslash, no control character), so a value joined into the canonical bytes is its own
# serialisation.
_VERBATIM = re.compile(r"[ !#-\[\]-~]*")


class EntryTemplate:
    """Entries alike but for some string values, each prepared as :func:`prepare_entry` would
    prepare it, without building, checking and serialising an entry each time (a national
    rescoring makes one entry a household, the same but for the subject and a digest).

    ``entry`` holds each of ``placeholders`` once, in a string of its canonical JSON (the
    subject may be one, whole); :meth:`prepare` joins the bytes around them with the values.
    A value JSON would escape is refused, so the result is byte for byte the filled entry's
    (tests/audit/test_entry_template.py holds the two equal)."""

    __slots__ = ("_columns", "_order", "_parts", "_subject")

    def __init__(self, entry: AuditEntry, placeholders: Sequence[str]) -> None:
        data = entry.canonical().decode()
        found: list[tuple[int, int]] = []
        for slot, placeholder in enumerate(placeholders):
            if not placeholder or not _VERBATIM.fullmatch(placeholder):
                raise ValueError("a placeholder must be non-empty printable ASCII, unescaped")
            if data.count(placeholder) != 1:
                raise ValueError("each placeholder must occur once in the entry")
            found.append((data.index(placeholder), slot))
        found.sort()
        parts: list[str] = []
        start = 0
        for at, slot in found:
            parts.append(data[start:at])
            start = at + len(placeholders[slot])
        parts.append(data[start:])
        self._parts = parts
        self._order = [slot for _at, slot in found]
        self._columns = (
            entry.time_ns,
            entry.actor["kind"],
            entry.actor["id"],
            entry.action,
            entry.purpose,
            entry.outcome,
            entry.actor.get("official"),
            entry.court_order["reference"] if entry.court_order else None,
        )
        fixed = [c for c in self._columns[1:] if isinstance(c, str)]
        if any(p in column for p in placeholders for column in fixed):
            raise ValueError("only the subject and values inside the entry may vary")
        subject = entry.subject
        self._subject: int | str | None = subject
        if subject is not None and any(p in subject for p in placeholders):
            if subject not in placeholders:
                raise ValueError("a varying subject must be a placeholder, whole")
            self._subject = list(placeholders).index(subject)

    def prepare(self, values: Sequence[str]) -> StoredEntry:
        """The entry with ``values`` (in the placeholders' order) in place of them."""
        parts = self._parts
        pieces = [parts[0]]
        for i, slot in enumerate(self._order, 1):
            value = values[slot]
            if not _VERBATIM.fullmatch(value):
                raise InvalidEntry("a template value would need escaping in JSON")
            pieces.append(value)
            pieces.append(parts[i])
        data = "".join(pieces).encode()
        subject = self._subject
        time_ns, kind, actor_id, action, purpose, outcome, official, order = self._columns
        return StoredEntry(
            -1,
            leaf_hash(data),
            data,
            time_ns,
            values[subject] if type(subject) is int else subject,  # type: ignore[arg-type]
            kind,
            actor_id,
            action,
            purpose,
            outcome,
            official,
            order,
        )
