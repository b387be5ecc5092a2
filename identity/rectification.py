"""Rectification requests (Law 09.08 art. 8): a person asks the office to correct named
fields of their RNP record, with a statement; the office accepts (the register's own
rectification, whose new version is linked to the request) or refuses with a reason.

What the main store keeps: the request's id, the IDCS (the office acts on the person's record,
as every registration office does), the names of the fields, the status and dates, the
deciding officer and the register's new version. The proposed values, the statement and a
refusal's reason are personal data: they are a vault record of their own kind
(``rectification_request``), written before the row and crypto-shredded if the row cannot be.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from sqlalchemy import Engine, RowMapping, delete, insert, select, update

from identity.tables import rectification_requests as requests

__all__ = [
    "RECTIFICATION_PERIOD_DAYS",
    "RectificationRequest",
    "RectificationRequests",
    "RequestDecided",
    "RequestStatus",
    "UnknownRequest",
]

RequestStatus = Literal["pending", "accepted", "refused"]
KIND = "rectification_request"
DAY_NS = 86_400 * 1_000_000_000
# Law 09.08 art. 8: the controller rectifies within ten clear days of the request.
RECTIFICATION_PERIOD_DAYS = 10


class UnknownRequest(Exception):
    def __init__(self) -> None:
        super().__init__("no such rectification request")


class RequestDecided(Exception):
    def __init__(self) -> None:
        super().__init__("this rectification request has been decided already")


class RequestVault(Protocol):
    """What this module uses of :class:`vault.Vault` (typed structurally)."""

    def store(self, subject: str, kind: str, fields: Mapping[str, object]) -> None: ...
    def erase(self, subject: str) -> None: ...
    def exists(self, subject: str) -> bool: ...


@dataclass(frozen=True)
class RectificationRequest:
    id: str
    idcs: str
    vault_subject: str
    fields: tuple[str, ...]
    status: RequestStatus
    created_at_ns: int
    due_at_ns: int
    decided_at_ns: int | None
    decided_by: str | None
    version: int | None

    def as_public(self) -> dict[str, object]:
        """The request without the IDCS or a value: what a list may show."""
        return {
            "id": self.id,
            "fields": list(self.fields),
            "status": self.status,
            "created_at_ns": self.created_at_ns,
            "due_at_ns": self.due_at_ns,
            "decided_at_ns": self.decided_at_ns,
            "version": self.version,
        }


class RectificationRequests:
    """The requests over the main store; their contents in the vault."""

    def __init__(self, engine: Engine, vault: RequestVault) -> None:
        self._engine = engine
        self._vault = vault

    def submit(
        self,
        idcs: str,
        proposed: Mapping[str, object],
        statement: str,
        *,
        now_ns: int | None = None,
    ) -> RectificationRequest:
        """Record a request; the vault validates the record (:class:`vault.InvalidRecord`)."""
        now = time.time_ns() if now_ns is None else now_ns
        subject = "rr_" + secrets.token_hex(16)
        self._vault.store(
            subject,
            KIND,
            {
                "proposed": json.dumps(dict(proposed), ensure_ascii=False, sort_keys=True),
                "statement": statement,
            },
        )
        request = RectificationRequest(
            id=str(uuid.uuid4()),
            idcs=idcs,
            vault_subject=subject,
            fields=tuple(sorted(proposed)),
            status="pending",
            created_at_ns=now,
            due_at_ns=now + RECTIFICATION_PERIOD_DAYS * DAY_NS,
            decided_at_ns=None,
            decided_by=None,
            version=None,
        )
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(requests).values(_row(request)))
        except BaseException:
            self._vault.erase(subject)
            raise
        return request

    def get(self, request_id: str) -> RectificationRequest:
        with self._engine.connect() as conn:
            row = conn.execute(select(requests).where(requests.c.id == request_id)).first()
        if row is None:
            raise UnknownRequest()
        return _request(row._mapping)

    def listed(self, *, status: RequestStatus | None = None) -> list[RectificationRequest]:
        """The office's queue, oldest (nearest deadline) first."""
        query = select(requests).order_by(requests.c.created_at_ns, requests.c.id)
        if status is not None:
            query = query.where(requests.c.status == status)
        with self._engine.connect() as conn:
            return [_request(row._mapping) for row in conn.execute(query)]

    def of_person(self, idcs: str) -> list[RectificationRequest]:
        """A person's own requests, newest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(requests)
                .where(requests.c.idcs == idcs)
                .order_by(requests.c.created_at_ns.desc(), requests.c.id)
            )
            return [_request(row._mapping) for row in rows]

    def accepted(
        self, request_id: str, *, officer: str, version: int | None, now_ns: int | None = None
    ) -> RectificationRequest:
        """Close the request as accepted, linked to the register's new ``version``."""
        return self._close(request_id, "accepted", officer, version, now_ns)

    def refused(
        self, request_id: str, *, officer: str, reason: str, now_ns: int | None = None
    ) -> RectificationRequest:
        """Close the request as refused; the reason joins the request's vault record."""
        request = self.pending(request_id)
        self._vault.store(request.vault_subject, KIND, {"refusal_reason": reason})
        return self._close(request_id, "refused", officer, None, now_ns)

    def pending(self, request_id: str) -> RectificationRequest:
        """The request, or :class:`UnknownRequest` / :class:`RequestDecided`."""
        request = self.get(request_id)
        if request.status != "pending":
            raise RequestDecided()
        return request

    def forget(self, idcs: str) -> int:
        """Shred an erased person's requests (their vault records, then the rows); returns how
        many went. Idempotent."""
        found = self.of_person(idcs)
        for request in found:
            if self._vault.exists(request.vault_subject):
                self._vault.erase(request.vault_subject)
        with self._engine.begin() as conn:
            conn.execute(delete(requests).where(requests.c.idcs == idcs))
        return len(found)

    def _close(
        self,
        request_id: str,
        status: RequestStatus,
        officer: str,
        version: int | None,
        now_ns: int | None,
    ) -> RectificationRequest:
        now = time.time_ns() if now_ns is None else now_ns
        with self._engine.begin() as conn:
            # Only a pending row changes: two officers cannot both decide one request.
            done = conn.execute(
                update(requests)
                .where(requests.c.id == request_id, requests.c.status == "pending")
                .values(status=status, decided_at_ns=now, decided_by=officer, version=version)
            ).rowcount
        if not done:
            self.get(request_id)
            raise RequestDecided()
        return self.get(request_id)


def _row(request: RectificationRequest) -> dict[str, object]:
    return {**request.__dict__, "fields": ",".join(request.fields)}


def _request(row: RowMapping) -> RectificationRequest:
    names = str(row["fields"])
    return RectificationRequest(
        id=row["id"],
        idcs=row["idcs"],
        vault_subject=row["vault_subject"],
        fields=tuple(names.split(",")) if names else (),
        status=row["status"],
        created_at_ns=row["created_at_ns"],
        due_at_ns=row["due_at_ns"],
        decided_at_ns=row["decided_at_ns"],
        decided_by=row["decided_by"],
        version=row["version"],
    )
