"""The senders a citizen's notice leaves by: e-mail over SMTP (RFC 5321, with STARTTLS per
RFC 3207), SMS through an HTTP gateway, and the demo's file. ``SIJILL_NOTIFY_SENDER`` names the
ones a deployment runs; each serves the channels it can reach.

A sender answers the status its transport gave (SMTP's 250, the gateway's HTTP status, the
file's 200 once the line is written), 2xx meaning delivered, and raises on a transport failure;
the outbox retries both with backoff.
"""

from __future__ import annotations

import json
import os
import smtplib
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import httpx

from gateway.settings import Settings
from gateway.timefmt import rfc3339


@dataclass(frozen=True)
class Message:
    """One notice as it leaves: where to, and the words in the person's language."""

    channel: str  # "email" or "sms"
    address: str
    subject: str
    text: str
    language: str


class Sender(Protocol):
    channels: frozenset[str]

    def send(self, message: Message) -> int: ...


class FileSender:
    """The demo's sender: each message one JSON line appended to a file (mode 0600) under the
    data directory, where the demo's reader (or a test) finds it."""

    channels = frozenset({"email", "sms"})

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def send(self, message: Message) -> int:
        line = json.dumps(
            {
                "sent_at": rfc3339(time.time_ns()),
                "channel": message.channel,
                "to": message.address,
                "subject": message.subject,
                "text": message.text,
                "language": message.language,
            },
            ensure_ascii=False,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        return 200


class SmtpSender:
    """E-mail through the deployment's mail relay (smtplib), one connection a message."""

    channels = frozenset({"email"})

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.starttls, self.username, self.password = starttls, username, password
        self.timeout_s = timeout_s

    def send(self, message: Message) -> int:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.address
        mail["Subject"] = message.subject
        mail.set_content(message.text)
        mail["Content-Language"] = message.language  # RFC 3282; after set_content, which resets
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
            if self.starttls:
                smtp.starttls()  # RFC 3207; smtplib checks the relay's certificate
            if self.username is not None:
                smtp.login(self.username, self.password or "")
            # Raises SMTPRecipientsRefused (or another SMTPException) unless accepted.
            smtp.send_message(mail)
        return 250


class SmsHttpSender:
    """SMS through an HTTP gateway: ``POST <url>`` with ``{"to", "text"}`` as JSON and, when
    set, ``Authorization: Bearer <token>``; the gateway's 2xx means it took the message."""

    channels = frozenset({"sms"})

    def __init__(self, url: str, token: str | None = None, *, timeout_s: float = 10.0) -> None:
        self.url, self.token, self.timeout_s = url, token, timeout_s

    def send(self, message: Message) -> int:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = httpx.post(
            self.url,
            json={"to": message.address, "text": message.text},
            headers=headers,
            timeout=self.timeout_s,
        )
        return response.status_code


def build_senders(settings: Settings) -> Mapping[str, Sender]:
    """channel -> the sender that serves it, from ``SIJILL_NOTIFY_SENDER`` (the later one in
    that list serves a channel two of them reach)."""
    by_channel: dict[str, Sender] = {}
    for name in settings.notify_senders:
        sender: Sender
        if name == "file":
            sender = FileSender(settings.notify_file or settings.data_dir / "notifications.jsonl")
        elif name == "smtp":
            sender = SmtpSender(
                settings.notify_smtp_host,
                settings.notify_smtp_port,
                settings.notify_smtp_from,
                starttls=settings.notify_smtp_starttls,
                username=settings.notify_smtp_username,
                password=settings.notify_smtp_password,
            )
        else:
            assert settings.notify_sms_url is not None  # the settings require it
            sender = SmsHttpSender(settings.notify_sms_url, settings.notify_sms_token)
        by_channel.update(dict.fromkeys(sender.channels, sender))
    return by_channel
