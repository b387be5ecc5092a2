"""The delivery job: from the audit log to the person's channel.

Each run first *tails* the audit log from the cursor it keeps in the main store: the entries
recorded since its last run, of which it keeps an agency's uses of a person who asked to be
told of them (the choice's scope), and queues one notice each in the outbox, the cursor moved
in the same transaction. An agency's request pays nothing for this (no lookup, no write on its
path); a person's notice waits at most one run of the job. Then it *delivers* the outbox's due
notices to citizens (accesses, activation codes, breach notices): the person's channel and
language from their choice, their address read from the vault under a decision of the policy
(action ``deliver_notice``, on the record like any read), the words from
:mod:`gateway.notify.messages`, and the sender that serves the channel. A notice not delivered
is retried with backoff (consent/outbox.py).
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from audit import EntryFilter, LoggedEntry
from consent.outbox import ACCESS_NOTICE, ACTIVATION, Delivery, Item, Outbox
from gateway.auth import Principal
from gateway.authz import Enforcer
from gateway.breaches.notification import document_of
from gateway.jobs import ScheduledJob
from gateway.notify.choices import ADDRESS_FIELD
from gateway.notify.messages import (
    access_notice,
    activation_notice,
    breach_notice,
    court_order_words,
)
from gateway.notify.senders import Message, Sender, build_senders
from gateway.services import Services
from gateway.web.activation import NOTICE_ACCOUNT, notice_box

log = logging.getLogger("sijill.notify")
NOTIFIER = Principal(
    kind="system",
    client_id="notifier",
    sector="",
    scopes=frozenset({"system:notify"}),
    purposes=frozenset(),
    subject="notifier",
    token_id="",
)
TAIL_BATCH = 2000
# Whose uses of a record a person is told of: agencies', and law-enforcement authorities'.
_USERS = frozenset({"agency", "law_enforcement"})


class Notifier:
    def __init__(self, services: Services, senders: Mapping[str, Sender]) -> None:
        self.services = services
        self.senders = senders
        self.outbox = Outbox(services.engines["main"])
        # A run reads the log for at most one interval, then sends: a burst of agency traffic
        # delays the next notices, never the ones already queued.
        self.read_budget_s = services.settings.notify_every_seconds

    def run(self) -> list[Delivery]:
        """One pass: queue the new accesses' notices, then send what is due."""
        deadline = time.monotonic() + self.read_budget_s
        while self.tail() == TAIL_BATCH and time.monotonic() < deadline:
            pass
        return self.deliver()

    def tail(self, limit: int = TAIL_BATCH) -> int:
        """Turn the audit entries after the cursor into notices; how many entries it read."""
        preferences = self.services.notifications.preferences
        seen = preferences.cursor()
        if seen is None:
            # The first run starts at the first entry the oldest choice can want (a choice
            # announces the uses that follow it), or at the log's end when no one chose.
            start = self._start(preferences.earliest())
            if not preferences.queue([], seen=None, upto=start):
                return 0  # another run began at the same time
            seen = start
        entries = self.services.audit.entries(after=seen, limit=limit)
        if not entries:
            return 0
        uses = [e for e in entries if e.entry.actor["kind"] in _USERS and e.entry.subject]
        chosen = preferences.of_subjects({str(e.entry.subject) for e in uses})
        notices = []
        for logged in uses:
            entry = logged.entry
            choice = chosen.get(str(entry.subject))
            basis = (entry.legal_basis or {}).get("type")
            if choice is None or entry.time_ns < choice.created_at_ns:
                continue
            if choice.wants(entry.outcome, basis):
                # A use under a court order is told when its embargo ends, not before
                # (docs/privacy.md, "Law-enforcement queries"); the log has it already.
                not_before = entry.embargo_until_ns or 0
                notices.append((choice.subject, json.dumps(_access(logged)), not_before))
        preferences.queue(notices, seen=seen, upto=entries[-1].index)
        return len(entries)

    def _start(self, since_ns: int | None) -> int:
        """The cursor (the last index already considered) of a first run."""
        if since_ns is not None:
            first = self.services.audit.entries(EntryFilter(since_ns=since_ns), after=-1, limit=1)
            if first:
                return first[0].index - 1
        return self.services.audit.size() - 1

    def deliver(self, limit: int = 100) -> list[Delivery]:
        return self.outbox.deliver(self._attempt, citizens=True, limit=limit)

    def _attempt(self, item: Item) -> int | None:
        choices = self.services.notifications
        choice = choices.preferences.get(item.recipient)
        if choice is None:
            return None  # no channel chosen (yet): the notice waits, with backoff
        sender = self.senders.get(choice.channel)
        if sender is None:
            log.warning("no sender for the channel", extra={"channel": choice.channel})
            return None
        subject, text = self._words(item, choice.language)
        enforcer = Enforcer(services=self.services, principal=NOTIFIER, action="deliver_notice")
        outcome = enforcer.decide(
            resource={"kind": "contact", "fields": [ADDRESS_FIELD]},
            purpose=None,
            vault_subjects=[choice.contact_subject],
            subject_tag=choice.subject,
        )
        if not outcome.allowed:
            return None
        address = choices.address(choice, outcome.decisions[choice.contact_subject])
        return sender.send(Message(choice.channel, address, subject, text, choice.language))

    def _words(self, item: Item, language: str) -> tuple[str, str]:
        body: dict[str, Any] = json.loads(item.body) if item.body.startswith("{") else {}
        if item.event == ACCESS_NOTICE:
            client = self.services.oauth.registry.get(str(body["agency"]))
            name = client.name if client is not None else str(body["agency"])
            if body.get("court_order"):
                name = court_order_words(language, name, str(body["court_order"]))
            portal = f"{self.services.settings.issuer}/portal/log"
            return access_notice(body, language, name, portal)
        if item.event == ACTIVATION:
            sealed = base64.b64decode(body["sealed"])
            notice = json.loads(notice_box(self.services).open(sealed, NOTICE_ACCOUNT))
            return activation_notice(str(notice["code"]), int(notice["expires_at"]), language)
        return breach_notice(document_of(item.body), language)


def _access(logged: LoggedEntry) -> dict[str, Any]:
    """What an access notice holds: who, for what, when, allowed or refused (no field)."""
    entry = logged.entry
    notice: dict[str, Any] = {
        "agency": entry.actor["id"],
        "purpose": entry.purpose,
        "time_ns": entry.time_ns,
        "outcome": entry.outcome,
        "audit_index": logged.index,
    }
    if entry.court_order is not None:
        notice["court_order"] = entry.court_order["reference"]
    return notice


def notifications_job(services: Services, work: Callable[[], object] | None = None) -> ScheduledJob:
    """The delivery job as ``sijill serve`` runs it (one process at a time, under its lease
    ``job:notifications``); ``work`` replaces a plain run (``sijill notifications deliver``
    counts what each run sent)."""
    if work is None:
        work = Notifier(services, build_senders(services.settings)).run
    return ScheduledJob(
        "notifications",
        services.settings.notify_every_seconds,
        work,
        engine=services.engines["main"],
    )
