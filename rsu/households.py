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
from rsu.tables import households, memberships
from storekit.bulk import among
from vault import ModelSet, ScoreEvent

__all__ = [
    "AlreadyInHousehold",
    "Household",
    "HouseholdError",
    "HouseholdRegister",
    "HouseholdVault",
    "ScoreListener",
    "UnknownHousehold",
    "UnknownMember",
]


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
    ) -> Household:
        """Register and score a household; returns its ids (never its score).

        Raises :class:`pydantic.ValidationError`/``ValueError`` for a malformed request,
        :class:`UnknownMember` or :class:`AlreadyInHousehold`; in every case nothing is stored.
        """
        parsed = [m if isinstance(m, MemberIn) else MemberIn.model_validate(m) for m in members]
        validate_members(parsed)
        decl = (
            declaration
            if isinstance(declaration, DeclarationIn)
            else DeclarationIn.model_validate(declaration)
        )
        self._check_members(m.idcs for m in parsed)
        subject = _vault_subject()
        household_id = _household_id()
        self._vault.store(subject, "household", vault_record(parsed, decl))
        now = _now()
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(households), {
                    "household_id": household_id, "vault_subject": subject,
                    "model_version": None, "scored_at": None,
                    "created_at": now, "updated_at": now,
                })  # fmt: skip
                conn.execute(insert(memberships), [
                    {"idcs": m.idcs, "household_id": household_id, "joined_at": now}
                    for m in parsed
                ])  # fmt: skip
        except sa_exc.IntegrityError:
            # A member joined another household between our check and this insert.
            self._vault.erase(subject)
            raise AlreadyInHousehold() from None
        except BaseException:
            self._vault.erase(subject)
            raise
        version = self._rescore([(household_id, subject)], "register")
        return Household(household_id, subject, len(parsed), version)

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

    def get(self, household_id: str) -> Household:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(households).where(households.c.household_id == household_id)
            ).first()
            if row is None:
                raise UnknownHousehold()
            size = conn.execute(
                select(func.count())
                .select_from(memberships)
                .where(memberships.c.household_id == household_id)
            ).scalar_one()
        return Household(row.household_id, row.vault_subject, int(size), row.model_version)

    def count(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(households)).scalar_one())

    # -- membership changes (each rescored) --------------------------------------------------
    def add_member(self, household_id: str, member: Mapping[str, Any] | MemberIn) -> None:
        """A birth, a marriage, anyone joining: the person must be in the RNP already."""
        new = member if isinstance(member, MemberIn) else MemberIn.model_validate(member)
        if new.relation == "head":
            raise ValueError("relation: a household has one head; use new_head on removal")
        household = self.get(household_id)
        self._check_members([new.idcs])
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(memberships),
                    {"idcs": new.idcs, "household_id": household_id, "joined_at": _now()},
                )
        except sa_exc.IntegrityError:
            raise AlreadyInHousehold() from None
        try:
            self._vault.amend_household(household.vault_subject, add=[new.model_dump()])
        except BaseException:
            with self._engine.begin() as conn:
                conn.execute(delete(memberships).where(memberships.c.idcs == new.idcs))
            raise
        self._rescore([(household_id, household.vault_subject)], "member_added")

    def remove_member(
        self,
        idcs: str,
        *,
        reason: str = "left",
        new_head: str | None = None,
        succession: bool = False,
    ) -> str | None:
        """A death, a departure or an erasure. The household is rescored; when its last member
        leaves it is dissolved and its record crypto-shredded. A departing head needs
        ``new_head``, or ``succession`` (the vault names the spouse, else the first member).
        Returns the household id it left."""
        household_id = self.household_id_of(idcs)
        if household_id is None:
            return None
        household = self.get(household_id)
        if household.size == 1:
            self._dissolve(household)
            return household_id
        self._vault.amend_household(
            household.vault_subject, remove=[idcs], new_head=new_head, succession=succession
        )
        with self._engine.begin() as conn:
            conn.execute(delete(memberships).where(memberships.c.idcs == idcs))
        self._rescore([(household_id, household.vault_subject)], f"member_{reason}")
        return household_id

    def split(
        self,
        household_id: str,
        members: Sequence[Mapping[str, Any] | MemberIn],
        declaration: Mapping[str, Any] | DeclarationIn,
        *,
        new_head: str | None = None,
    ) -> Household:
        """Some members leave to form a new household (with its own declaration); both are
        rescored."""
        parsed = [m if isinstance(m, MemberIn) else MemberIn.model_validate(m) for m in members]
        validate_members(parsed)
        decl = (
            declaration
            if isinstance(declaration, DeclarationIn)
            else DeclarationIn.model_validate(declaration)
        )
        old = self.get(household_id)
        leaving = [m.idcs for m in parsed]
        with self._engine.connect() as conn:
            here = set(
                conn.execute(
                    select(memberships.c.idcs).where(
                        memberships.c.household_id == household_id, memberships.c.idcs.in_(leaving)
                    )
                ).scalars()
            )
        if here != set(leaving):
            raise UnknownMember()
        if len(here) >= old.size:
            raise ValueError("members: a split leaves at least one member behind")
        self._vault.amend_household(old.vault_subject, remove=leaving, new_head=new_head)
        with self._engine.begin() as conn:
            conn.execute(delete(memberships).where(memberships.c.idcs.in_(leaving)))
        self._rescore([(household_id, old.vault_subject)], "split")
        return self.register_household(parsed, decl)

    def correct_declaration(
        self, household_id: str, declaration: Mapping[str, Any] | DeclarationIn
    ) -> str | None:
        """A corrected questionnaire (a reviewer's, Law 09.08 art. 11; the members stay as
        they are): written in the vault and rescored there at once. Returns the model version
        that scored it; raises :class:`pydantic.ValidationError` or :class:`UnknownHousehold`."""
        decl = (
            declaration
            if isinstance(declaration, DeclarationIn)
            else DeclarationIn.model_validate(declaration)
        )
        household = self.get(household_id)
        self._vault.redeclare_household(household.vault_subject, decl.model_dump())
        return self._rescore([(household_id, household.vault_subject)], "declaration_corrected")

    def _dissolve(self, household: Household) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                delete(memberships).where(memberships.c.household_id == household.household_id)
            )
            conn.execute(
                delete(households).where(households.c.household_id == household.household_id)
            )
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
