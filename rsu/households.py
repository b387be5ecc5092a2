"""The Unified Social Register (RSU, Law 72.18): households, their members and their score.

What the main store keeps per household: an opaque household id, the vault subject of its
record, the version of the model that last scored it, timestamps, and the membership (IDCS →
household; one household per person at a time, held by the primary key). Everything declared
(members' relations, ages, education, occupation, disability; the dwelling, spending and goods;
even urban/rural and the region) is in the vault, encrypted, and is scored there
(vault/scoring/): this room never sees the declaration again after handing it over, nor the
score.

Registration requires prior registration in the RNP (Law 72.18): every member must be an
active person of :class:`identity.Register`, else :class:`UnknownMember` and nothing is stored.

Writing to two stores: the vault record is written first, then the household and membership
rows in one transaction; if that transaction fails (a member joined another household in
between) the vault record is crypto-shredded. A crash between the two leaves a vault record no
row points to, readable by nobody (its subject id is random and unrecorded).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy import exc as sa_exc

from identity.register import PersonErased, Register, UnknownPerson
from rsu.declarations import DeclarationIn, MemberIn, validate_members, vault_record
from rsu.history import (
    ChangedBy,
    HouseholdEvent,
    events_of,
    record_event,
)
from rsu.tables import household_events, households, memberships
from storekit.bulk import among
from vault import InvalidRecord, ModelSet, ScoreEvent

__all__ = [
    "AlreadyInHousehold",
    "Household",
    "HouseholdError",
    "HouseholdRegister",
    "HouseholdVault",
    "NotAMember",
    "ScoreListener",
    "UnknownHousehold",
    "UnknownMember",
]

MAX_MEMBERS = 100
_REASON = re.compile(r"[a-z_]{1,16}")


class HouseholdError(Exception):
    """Base of the register's refusals; messages never carry an IDCS or a declared value."""


class UnknownMember(HouseholdError):
    def __init__(self) -> None:
        super().__init__("a member is not an active person of the population register (RNP)")


class AlreadyInHousehold(HouseholdError):
    def __init__(self) -> None:
        super().__init__("a member already belongs to a household")


class UnknownHousehold(HouseholdError):
    def __init__(self) -> None:
        super().__init__("no such household")


class NotAMember(HouseholdError):
    def __init__(self) -> None:
        super().__init__("the members named are not the household's members")


# -- the register ----------------------------------------------------------------------------
class HouseholdVault(Protocol):
    """What this room uses of :class:`vault.Vault` (typed structurally)."""

    def store(self, subject: str, kind: str, fields: Mapping[str, object]) -> None: ...
    def erase(self, subject: str) -> None: ...
    def score_many(self, subjects: Sequence[str], models: Any) -> list[ScoreEvent]: ...
    def amend_household(
        self, subject: str, *, add: Sequence[Mapping[str, object]] = ...,
        remove: Sequence[str] = ..., new_head: str | None = ..., succession: bool = ...,
    ) -> int: ...  # fmt: skip
    def redeclare_household(self, subject: str, declaration: Mapping[str, object]) -> None: ...


# Called with each scoring's events and the reason ("register", "birth", ...): the gateway
# appends one audit entry per event (model version, digests, never a value).
ScoreListener = Callable[[Sequence[ScoreEvent], str], None]


@dataclass(frozen=True)
class Household:
    household_id: str
    vault_subject: str
    size: int
    model_version: str | None
    sector: str | None = None


def _parsed(
    members: Sequence[Mapping[str, Any] | MemberIn], declaration: Mapping[str, Any] | DeclarationIn
) -> tuple[list[MemberIn], DeclarationIn]:
    parsed = [m if isinstance(m, MemberIn) else MemberIn.model_validate(m) for m in members]
    validate_members(parsed)
    decl = (
        declaration
        if isinstance(declaration, DeclarationIn)
        else DeclarationIn.model_validate(declaration)
    )
    return parsed, decl


def _check_reason(reason: str) -> None:
    # A code, never free text (the history is in the main store). Offices pick from
    # ADD_REASONS / REMOVE_REASONS; procedures of the register name their own ("erased").
    if not _REASON.fullmatch(reason):
        raise ValueError("reason: a code of lowercase letters")


def _now() -> datetime:
    return datetime.now(UTC)


def _household_id() -> str:
    return "h_" + secrets.token_hex(12)


def _vault_subject() -> str:
    # Random, as the RNP's: a vault dump and a register dump join only through this table.
    return "hh_" + secrets.token_hex(16)


class HouseholdRegister:
    """The RSU over the main store; declarations and scores go to the vault."""

    def __init__(
        self,
        engine: Engine,
        vault: HouseholdVault,
        register: Register,
        *,
        models: ModelSet | None = None,
        on_scored: ScoreListener | None = None,
    ) -> None:
        self._engine = engine
        self._vault = vault
        self._register = register
        self.models = models if models is not None else ModelSet.load("v1")
        self._on_scored = on_scored

    # -- registration ------------------------------------------------------------------------
    @staticmethod
    def parse(
        members: Iterable[Mapping[str, Any]], declaration: Mapping[str, Any]
    ) -> tuple[list[MemberIn], DeclarationIn]:
        """Validate a registration; raises :class:`pydantic.ValidationError` or ValueError."""
        parsed = [MemberIn.model_validate(m) for m in members]
        validate_members(parsed)
        return parsed, DeclarationIn.model_validate(declaration)

    def _check_members(self, idcs: Iterable[str]) -> None:
        wanted = list(idcs)
        for one in wanted:
            try:
                if self._register.status(one) != "active":
                    raise UnknownMember()
            except (UnknownPerson, PersonErased):
                raise UnknownMember() from None
        with self._engine.connect() as conn:
            taken = conn.execute(
                select(func.count()).select_from(memberships).where(memberships.c.idcs.in_(wanted))
            ).scalar_one()
        if taken:
            raise AlreadyInHousehold()

    def register_household(
        self,
        members: Sequence[Mapping[str, Any] | MemberIn],
        declaration: Mapping[str, Any] | DeclarationIn,
        *,
        by: ChangedBy | None = None,
    ) -> Household:
        """Register and score a household; returns its ids (never its score). ``by`` is the
        office registering it: its sector then holds the household.

        Raises :class:`pydantic.ValidationError`/``ValueError`` for a malformed request,
        :class:`UnknownMember` or :class:`AlreadyInHousehold`; in every case nothing is stored.
        """
        parsed, decl = _parsed(members, declaration)
        self._check_members(m.idcs for m in parsed)
        household = self._create(parsed, decl, by=by)
        version = self._rescore([(household.household_id, household.vault_subject)], "register")
        return Household(household.household_id, household.vault_subject, len(parsed), version)

    def _create(
        self,
        parsed: Sequence[MemberIn],
        decl: DeclarationIn,
        *,
        by: ChangedBy | None,
        split_from: Household | None = None,
    ) -> Household:
        """Store the declaration in the vault, then the household, its members and its first
        event in one transaction; for a split, the same transaction takes the leaving members
        out of ``split_from`` and records the split there too."""
        subject = _vault_subject()
        household_id = _household_id()
        self._vault.store(subject, "household", vault_record(parsed, decl))
        now = _now()
        idcs = [m.idcs for m in parsed]
        try:
            with self._engine.begin() as conn:
                if split_from is not None:
                    conn.execute(delete(memberships).where(memberships.c.idcs.in_(idcs)))
                    record_event(
                        conn, split_from.household_id, "split", at=now, by=by,
                        size_before=split_from.size, size_after=split_from.size - len(idcs),
                        related_household=household_id,
                    )  # fmt: skip
                conn.execute(insert(households), {
                    "household_id": household_id, "vault_subject": subject,
                    "sector": split_from.sector if split_from else (by.sector if by else None),
                    "model_version": None, "scored_at": None,
                    "created_at": now, "updated_at": now,
                })  # fmt: skip
                conn.execute(insert(memberships), [
                    {"idcs": one, "household_id": household_id, "joined_at": now}
                    for one in idcs
                ])  # fmt: skip
                record_event(
                    conn, household_id, "split_from" if split_from else "registered", at=now,
                    by=by, size_before=split_from.size if split_from else 0,
                    size_after=len(idcs),
                    related_household=split_from.household_id if split_from else None,
                )  # fmt: skip
        except sa_exc.IntegrityError:
            # A member joined another household between our check and this insert.
            self._vault.erase(subject)
            raise AlreadyInHousehold() from None
        except BaseException:
            self._vault.erase(subject)
            raise
        sector = split_from.sector if split_from else (by.sector if by else None)
        return Household(household_id, subject, len(idcs), None, sector)

    # -- reading -----------------------------------------------------------------------------
    def household_of(self, idcs: str) -> str | None:
        """The vault subject of the household ``idcs`` belongs to now, or None."""
        with self._engine.connect() as conn:
            return conn.execute(
                select(households.c.vault_subject)
                .select_from(memberships.join(
                    households, households.c.household_id == memberships.c.household_id))
                .where(memberships.c.idcs == idcs)
            ).scalar_one_or_none()  # fmt: skip

    def household_id_of(self, idcs: str) -> str | None:
        with self._engine.connect() as conn:
            return conn.execute(
                select(memberships.c.household_id).where(memberships.c.idcs == idcs)
            ).scalar_one_or_none()

    def get(self, household_id: str, *, sector: str | None = None) -> Household:
        """The household; with ``sector``, only if that sector's offices may change it (else
        :class:`UnknownHousehold`, as for a household that does not exist: an office learns
        nothing of another sector's households)."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(households).where(households.c.household_id == household_id)
            ).first()
            if row is None or (sector is not None and row.sector not in (None, sector)):
                raise UnknownHousehold()
            size = conn.execute(
                select(func.count())
                .select_from(memberships)
                .where(memberships.c.household_id == household_id)
            ).scalar_one()
        return Household(
            row.household_id, row.vault_subject, int(size), row.model_version, row.sector
        )

    def members_of(self, household_id: str) -> list[str]:
        """The IDCS of the household's members now (the register's own references)."""
        with self._engine.connect() as conn:
            return sorted(
                conn.execute(
                    select(memberships.c.idcs).where(memberships.c.household_id == household_id)
                ).scalars()
            )

    def history(self, household_id: str) -> Sequence[HouseholdEvent]:
        """The household's changes, oldest first."""
        with self._engine.connect() as conn:
            return events_of(conn, household_id)

    def count(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(households)).scalar_one())

    # -- membership changes (each recorded and rescored) -------------------------------------
    def add_member(
        self,
        household_id: str,
        member: Mapping[str, Any] | MemberIn,
        *,
        reason: str = "other",
        by: ChangedBy | None = None,
    ) -> Household:
        """A birth, a marriage, anyone joining: the person must be an active RNP person in no
        other household. Returns the household as rescored."""
        new = member if isinstance(member, MemberIn) else MemberIn.model_validate(member)
        if new.relation == "head":
            raise ValueError("relation: a household has one head; name a new head on removal")
        _check_reason(reason)
        household = self.get(household_id, sector=by.sector if by else None)
        if household.size >= MAX_MEMBERS:
            raise ValueError("members: at most 100")
        self._check_members([new.idcs])
        try:
            with self._engine.begin() as conn:
                now = _now()
                conn.execute(
                    insert(memberships),
                    {"idcs": new.idcs, "household_id": household_id, "joined_at": now},
                )
                record_event(
                    conn, household_id, "member_added", at=now, by=by, reason=reason,
                    member_idcs=new.idcs, size_before=household.size,
                    size_after=household.size + 1,
                )  # fmt: skip
        except sa_exc.IntegrityError:
            raise AlreadyInHousehold() from None
        try:
            self._vault.amend_household(household.vault_subject, add=[new.model_dump()])
        except BaseException:
            # The vault refused (or failed): the membership and its event go too.
            with self._engine.begin() as conn:
                conn.execute(delete(memberships).where(memberships.c.idcs == new.idcs))
                conn.execute(
                    delete(household_events).where(
                        household_events.c.household_id == household_id,
                        household_events.c.member_idcs == new.idcs,
                        household_events.c.kind == "member_added",
                    )
                )
            raise
        return self._rescored(household, household.size + 1, "member_added")

    def remove_member(
        self,
        idcs: str,
        *,
        reason: str = "other",
        new_head: str | None = None,
        household_id: str | None = None,
        by: ChangedBy | None = None,
        succession: bool = False,
    ) -> str | None:
        """A death, a departure or an erasure. The household is rescored; when its last member
        leaves it is dissolved and its record crypto-shredded. Returns the household id it left
        (None when the person was in none). With ``household_id``, the person must be a member
        of that household (else :class:`NotAMember`); a departing head needs ``new_head``, or
        ``succession`` (the vault names the spouse, else the first member declared)."""
        _check_reason(reason)
        current = self.household_id_of(idcs)
        if household_id is not None:
            self.get(household_id, sector=by.sector if by else None)
            if current != household_id:
                raise NotAMember()
        if current is None:
            return None
        household = self.get(current)
        if new_head is not None and (new_head == idcs or new_head not in self.members_of(current)):
            raise ValueError("new_head: not one of the members who stay")
        if household.size == 1:
            self._dissolve(household, reason=reason, by=by, member=idcs)
            return current
        try:
            self._vault.amend_household(
                household.vault_subject, remove=[idcs], new_head=new_head, succession=succession
            )
        except InvalidRecord:
            # The vault checks the one rule only it can: the head leaves without a successor.
            raise ValueError("new_head: the head leaves; name the member who heads now") from None
        with self._engine.begin() as conn:
            conn.execute(delete(memberships).where(memberships.c.idcs == idcs))
            record_event(
                conn, current, "member_removed", at=_now(), by=by, reason=reason,
                member_idcs=idcs, size_before=household.size, size_after=household.size - 1,
            )  # fmt: skip
        self._rescored(household, household.size - 1, f"member_{reason}")
        return current

    def split(
        self,
        household_id: str,
        members: Sequence[Mapping[str, Any] | MemberIn],
        declaration: Mapping[str, Any] | DeclarationIn,
        *,
        new_head: str | None = None,
        by: ChangedBy | None = None,
    ) -> Household:
        """Some members leave to form a new household (with its own declaration); both are
        rescored. Returns the new household."""
        parsed, decl = _parsed(members, declaration)
        old = self.get(household_id, sector=by.sector if by else None)
        leaving = {m.idcs for m in parsed}
        staying = set(self.members_of(household_id))
        if not leaving <= staying:
            raise NotAMember()
        staying -= leaving
        if not staying:
            raise ValueError("members: a split leaves at least one member behind")
        if new_head is not None and new_head not in staying:
            raise ValueError("new_head: not one of the members who stay")
        try:
            self._vault.amend_household(
                old.vault_subject, remove=sorted(leaving), new_head=new_head
            )
        except InvalidRecord:
            raise ValueError("new_head: the head leaves; name the member who heads now") from None
        try:
            new = self._create(parsed, decl, by=by, split_from=old)
        except BaseException:
            # Put the leaving members back into the old record (a failure of the main store).
            back = [m.model_dump() | {"relation": "other_relative"} for m in parsed]
            self._vault.amend_household(old.vault_subject, add=back)
            raise
        self._rescore(
            [(household_id, old.vault_subject), (new.household_id, new.vault_subject)], "split"
        )
        return self.get(new.household_id)

    def declare(
        self,
        household_id: str,
        members: Sequence[Mapping[str, Any] | MemberIn],
        declaration: Mapping[str, Any] | DeclarationIn,
        *,
        by: ChangedBy | None = None,
    ) -> Household:
        """A new declaration of the whole household (a new survey: the dwelling, spending and
        goods, and each member's answers); it must list exactly the household's members. An
        address not given keeps the last one declared. Rescored at once; returns the household
        as rescored."""
        parsed, decl = _parsed(members, declaration)
        household = self.get(household_id, sector=by.sector if by else None)
        if {m.idcs for m in parsed} != set(self.members_of(household_id)):
            raise NotAMember()
        self._vault.store(household.vault_subject, "household", vault_record(parsed, decl))
        with self._engine.begin() as conn:
            record_event(
                conn, household_id, "declared", at=_now(), by=by,
                size_before=household.size, size_after=len(parsed),
            )  # fmt: skip
        return self._rescored(household, len(parsed), "declared")

    def correct_declaration(
        self,
        household_id: str,
        declaration: Mapping[str, Any] | DeclarationIn,
        *,
        by: ChangedBy | None = None,
    ) -> str | None:
        """A corrected questionnaire (a reviewer's, Law 09.08 art. 11; the members stay as
        they are): written in the vault and rescored there at once, and on the household's
        history as a declaration for a review. Returns the model version that scored it;
        raises :class:`pydantic.ValidationError` or :class:`UnknownHousehold`."""
        decl = (
            declaration
            if isinstance(declaration, DeclarationIn)
            else DeclarationIn.model_validate(declaration)
        )
        household = self.get(household_id)
        self._vault.redeclare_household(household.vault_subject, decl.model_dump())
        with self._engine.begin() as conn:
            record_event(
                conn, household_id, "declared", at=_now(), by=by, reason="review",
                size_before=household.size, size_after=household.size,
            )  # fmt: skip
        return self._rescore([(household_id, household.vault_subject)], "declaration_corrected")

    def _rescored(self, household: Household, size: int, reason: str) -> Household:
        version = self._rescore([(household.household_id, household.vault_subject)], reason)
        return Household(
            household.household_id, household.vault_subject, size, version, household.sector
        )

    def _dissolve(
        self,
        household: Household,
        *,
        reason: str | None = None,
        by: ChangedBy | None = None,
        member: str | None = None,
    ) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                delete(memberships).where(memberships.c.household_id == household.household_id)
            )
            conn.execute(
                delete(households).where(households.c.household_id == household.household_id)
            )
            record_event(
                conn, household.household_id, "dissolved", at=_now(), by=by, reason=reason,
                member_idcs=member, size_before=household.size, size_after=0,
            )  # fmt: skip
        self._vault.erase(household.vault_subject)

    # -- scoring -----------------------------------------------------------------------------
    def _rescore(self, pairs: Sequence[tuple[str, str]], reason: str) -> str | None:
        events = self._vault.score_many([subject for _, subject in pairs], self.models)
        self.record_scores(pairs, events, reason)
        return events[-1].model_version if events else None

    def record_scores(
        self,
        pairs: Sequence[tuple[str, str]],
        events: Sequence[ScoreEvent],
        reason: str,
        *,
        conn: Connection | None = None,
    ) -> None:
        """Note the model version of each scored ``(household id, vault subject)`` and tell
        the listener (audit). Within ``conn``'s transaction when given (the national
        rescoring's batch), else in a transaction of its own; one statement a model version,
        whatever the count of households. With ``conn`` the listener is told before that
        transaction ends: a caller that writes its own audit entries (the national rescoring)
        builds the register without one."""
        version_of = {e.subject: e.model_version for e in events}
        by_version: dict[str | None, list[str]] = {}
        for household_id, subject in pairs:
            by_version.setdefault(version_of.get(subject), []).append(household_id)
        now = _now()
        with nullcontext(conn) if conn is not None else self._engine.begin() as writing:
            for version, ids in by_version.items():
                writing.execute(
                    update(households)
                    .where(among(writing, households.c.household_id, ids))
                    .values(model_version=version, scored_at=now, updated_at=now)
                )
        if self._on_scored is not None:
            self._on_scored(events, reason)
