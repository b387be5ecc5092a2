"""Per-household operations of the scoring: membership changes, eligibility, explanations.

What leaves here: to an agency, through :meth:`HouseholdOperations.eligible`, one boolean under
a decision for the action ``eligibility`` (Law 72.18: programs get "eligible or not", not the
index); to the household's own member, through :meth:`HouseholdOperations.explain`, each
variable's contribution to their score (Law 09.08 art. 11: a person may object to a decision
based solely on automated processing, which presupposes being able to see how it was reached).
Eligibility compares :class:`Decimal` values, so binary floating point never decides a boundary
case.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import Any

from vault import tables as t
from vault.decision import Decision, DecisionVerifier
from vault.envelope import encrypt_record
from vault.errors import DecisionRefused, Erased, InvalidRecord, UnknownSubject, VaultError
from vault.records import Records, count_declaration_write
from vault.schema import validate
from vault.scoring.features import parse_declaration
from vault.scoring.model import (
    LANGUAGES,
    Explanation,
    Models,
    NotScored,
    explanation,
    model_by_digest,
    remember,
)
from vault.scoring.reading import read_households

__all__ = ["OVERRIDE_FIELD", "SCORE_FIELD", "EligibilityAsk", "HouseholdOperations"]

# An eligibility question to the vault: household subject, threshold, decision, comparison.
EligibilityAsk = tuple[str, Decimal | str, Decision, str]

# The scoring writes one field on a household record (vault/schema.py HOUSEHOLD): ``score``,
# holding "<index> <model version> <model SHA-256>", one ciphertext, so the index and the model
# that produced it are sealed together and can never be read apart.
SCORE_FIELD = "score"
# A reviewer's decision on the household's eligibility (vault/schema.py HOUSEHOLD).
OVERRIDE_FIELD = "override"
# Who may read a score's explanation: the household's member (``read_score``, or
# ``export_own_data`` taking everything held about them) and the officer reviewing it at the
# member's request (``open_review``, Law 09.08 art. 11); never an agency.
EXPLAINED_TO = frozenset({"read_score", "export_own_data", "open_review"})


class HouseholdOperations:
    """Membership changes, eligibility answers and explanations of one vault's households."""

    def __init__(
        self, records: Records, verifier: DecisionVerifier, clock: Callable[[], int]
    ) -> None:
        self._records = records
        self._verifier = verifier
        self._clock = clock

    def amend_members(
        self,
        subject: str,
        *,
        add: Sequence[Mapping[str, object]] = (),
        remove: Sequence[str] = (),
        new_head: str | None = None,
        succession: bool = False,
    ) -> int:
        """Change a household's membership inside the vault (birth, death, departure, split)
        and return its new size; the caller rescores. Members are matched by IDCS, which only
        the vault holds next to the declaration. A departing head needs ``new_head``, or
        ``succession``: the spouse, else the first member declared, heads the household (an
        erasure removes a head no officer replaces; the office may name another later)."""
        with self._records.write() as conn:
            count_declaration_write(conn)
            plain, keys = read_households(
                self._records, conn, [subject], ("members", "declaration")
            )
            record = plain[subject]
            members_text, text = record.get("members"), record.get("declaration")
            if not isinstance(members_text, str) or not isinstance(text, str):
                raise InvalidRecord("household record has no members or declaration")
            members: list[dict[str, Any]] = json.loads(members_text)
            declaration = parse_declaration(text)
            detail: list[dict[str, Any]] = declaration.get("members", [])
            gone = set(remove)
            known = {m.get("idcs") for m in members}
            if not gone <= known:
                raise InvalidRecord("a member to remove is not in this household")
            head_leaves = any(
                m.get("relation") == "head" and m.get("idcs") in gone for m in members
            )
            members = [m for m in members if m.get("idcs") not in gone]
            detail = [m for m in detail if m.get("idcs") not in gone]
            if head_leaves and new_head is None and succession and members:
                spouses = [m for m in members if m.get("relation") == "spouse"]
                new_head = str((spouses or members)[0].get("idcs"))
            for new in add:
                if new.get("idcs") in known - gone or new.get("relation") == "head":
                    raise InvalidRecord("an added member is already here or claims to be head")
                members.append({"idcs": new.get("idcs"), "relation": new.get("relation")})
                detail.append(dict(new))
            if new_head is not None or head_leaves:
                if new_head is None or new_head not in {m.get("idcs") for m in members}:
                    raise InvalidRecord("the household needs a head among its members")
                for row in (*members, *detail):
                    if row.get("relation") == "head":
                        row["relation"] = "other_relative"
                    if row.get("idcs") == new_head:
                        row["relation"] = "head"
            if not members:
                raise InvalidRecord("a household cannot be left without members")
            if len(members) > 100:
                raise InvalidRecord("household: above 100 members")
            declaration["members"] = detail
            (head,) = (str(m["idcs"]) for m in members if m.get("relation") == "head")
            values: dict[str, object] = {
                "members": json.dumps(members, separators=(",", ":")),
                "declaration": json.dumps(declaration, ensure_ascii=False, separators=(",", ":")),
                "size": len(members),
                "head": head,
            }
            validate("household", values)
            key_id, aead = keys[subject]
            t.write_fields(
                conn,
                encrypt_record(aead, key_id, subject, values),
                [(subject, name) for name in values],
            )
            return len(members)

    def redeclare(self, subject: str, declaration: Mapping[str, object]) -> None:
        """Replace a household's socio-economic answers (a reviewer's correction) and keep
        its members: ``declaration`` is the questionnaire without them (rsu DeclarationIn's
        fields); the caller rescores. The members' details stay here, never asked back."""
        with self._records.write() as conn:
            count_declaration_write(conn)
            plain, keys = read_households(self._records, conn, [subject], ("declaration",))
            text = plain[subject].get("declaration")
            if not isinstance(text, str):
                raise InvalidRecord("household record has no declaration")
            body = {k: v for k, v in declaration.items() if k != "address"}
            body["members"] = parse_declaration(text).get("members", [])
            values: dict[str, object] = {
                "declaration": json.dumps(body, ensure_ascii=False, separators=(",", ":")),
                "area": declaration["area"],
                "region": declaration["region"],
                "province": declaration["province"],
            }
            address = declaration.get("address")
            if address is not None:
                values["address"] = address
            validate("household", values)
            key_id, aead = keys[subject]
            t.write_fields(
                conn,
                encrypt_record(aead, key_id, subject, values),
                [(subject, name) for name in values],
            )

    def override(self, subject: str, outcome: str | None, decision: Decision) -> None:
        """Record a reviewer's decision on the household's eligibility (``eligible`` or
        ``not_eligible``), or withdraw it (None), under a decision for the action
        ``decide_review`` about ``subject``."""
        self._verifier.verify(decision, subject, now_ns=self._clock())
        if decision.action != "decide_review":
            raise DecisionRefused("decision is not for a review's outcome")
        with self._records.write() as conn:
            _plain, keys = read_households(self._records, conn, [subject], ("size",))
            if outcome is None:
                t.write_fields(conn, [], [(subject, OVERRIDE_FIELD)])
                return
            values: dict[str, object] = {OVERRIDE_FIELD: outcome}
            validate("household", values)
            key_id, aead = keys[subject]
            t.write_fields(
                conn,
                encrypt_record(aead, key_id, subject, values),
                [(subject, OVERRIDE_FIELD)],
            )

    def eligible(
        self, subject: str, threshold: Decimal | str, decision: Decision, *, comparison: str = "lte"
    ) -> bool:
        """Whether the household's score is at or below ``threshold`` (``lte``; ``lt`` for a
        strict rule). Needs a valid decision for the action ``eligibility`` about ``subject``;
        answers a boolean and nothing else."""
        (answer,) = self.eligible_many([(subject, threshold, decision, comparison)])
        if isinstance(answer, VaultError):
            raise answer
        return answer

    def eligible_many(self, asks: Sequence[EligibilityAsk]) -> list[bool | VaultError]:
        """:meth:`eligible` of each (subject, threshold, decision, comparison) through one
        read: in order, the boolean, or the :class:`VaultError` its single call would raise
        (an unscored, erased or unknown household's). A decision that does not verify
        refuses the whole call before anything is read, as :meth:`Vault.reveal_many` does."""
        now = self._clock()
        limits = [self._checked(*ask, now) for ask in asks]
        subjects = list(dict.fromkeys(subject for subject, *_ in asks))
        wanted = {SCORE_FIELD, OVERRIDE_FIELD}
        with self._records.engine.connect() as conn:
            if len(subjects) == 1:
                # The agency's single question: one statement on the hot-path runner.
                rows, kind = self._records.subject_rows(subjects[0], wanted)
                kinds = {} if kind is None else {subjects[0]: kind}
            else:
                rows, kinds = self._records.rows_of(subjects, tuple(wanted))
            failed: dict[str, VaultError] = {}
            for subject in subjects:
                if subject not in rows.status:
                    failed[subject] = UnknownSubject("no record for this subject")
                elif rows.status[subject] is not None:
                    failed[subject] = Erased("this subject's data was erased")
                elif kinds[subject] != "household":
                    failed[subject] = InvalidRecord("only a household record can be scored")
            readable = [s for s in subjects if s not in failed]
            rows = replace(
                rows,
                subjects=tuple(readable),
                fields=[row for row in rows.fields if row[0] not in failed],
            )
            plain = self._records.decrypt(conn, rows, dict.fromkeys(readable, wanted))
        answers: list[bool | VaultError] = []
        for (subject, _threshold, _decision, comparison), limit in zip(asks, limits, strict=True):
            if subject in failed:
                answers.append(failed[subject])
                continue
            try:
                answers.append(_eligible(plain[subject], limit, comparison))
            except VaultError as error:
                answers.append(error)
        return answers

    def _checked(
        self, subject: str, threshold: Decimal | str, decision: Decision, comparison: str, now: int
    ) -> Decimal:
        """The threshold of an eligibility question whose decision holds, as a Decimal."""
        self._verifier.verify(decision, subject, now_ns=now)
        if decision.action != "eligibility":
            raise DecisionRefused("decision is not for an eligibility answer")
        if comparison not in ("lte", "lt"):
            raise VaultError("comparison must be lte or lt")
        return _decimal(threshold)

    def explain(
        self, subject: str, decision: Decision, *, language: str = "fr",
        models: Models | None = None,
    ) -> Explanation:  # fmt: skip
        """Each variable's contribution to the household's stored score, labelled in
        ``language`` (ar, fr or en): for the decisions of :data:`EXPLAINED_TO`, never for an
        agency."""
        self._verifier.verify(decision, subject, now_ns=self._clock())
        if decision.action not in EXPLAINED_TO:
            raise DecisionRefused("decision is not for reading a score's explanation")
        if language not in LANGUAGES:
            language = "fr"
        with self._records.engine.connect() as conn:
            plain, _ = read_households(self._records, conn, [subject], ("declaration", SCORE_FIELD))
        record = plain[subject]
        score, version, digest = _stored_score(record)
        text = record.get("declaration")
        if not isinstance(text, str):
            raise InvalidRecord("household record has no declaration")
        if models is not None:
            remember(models)
        model = model_by_digest(version, digest)
        return explanation(model, parse_declaration(text), score, language)


def _stored_score(record: Mapping[str, object]) -> tuple[str, str, str]:
    """(index, model version, model digest) of a household's stored score."""
    stored = record.get(SCORE_FIELD)
    if isinstance(stored, str):
        parts = stored.split(" ")
        if len(parts) == 3:
            return parts[0], parts[1], parts[2]
    raise NotScored("this household has no score yet")


def _eligible(plain: Mapping[str, object], limit: Decimal, comparison: str) -> bool:
    # A reviewer's decision stands over the model's (Law 09.08 art. 11); the agency still
    # learns nothing but the boolean.
    human = plain.get(OVERRIDE_FIELD)
    if human in ("eligible", "not_eligible"):
        return human == "eligible"
    score = _decimal(_score_index(plain))
    return score <= limit if comparison == "lte" else score < limit


def _score_index(record: Mapping[str, object]) -> str:
    """The index alone (eligibility reads the ``score`` field only)."""
    stored = record.get(SCORE_FIELD)
    if not isinstance(stored, str):
        raise NotScored("this household has no score yet")
    return stored.partition(" ")[0]


def _decimal(value: Decimal | str) -> Decimal:
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, str):
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise VaultError("a threshold is a decimal number") from None
    else:
        # A float threshold would already carry binary rounding: refuse it.
        raise VaultError("a threshold is a Decimal or decimal text, never a float")
    if not result.is_finite():
        raise VaultError("a threshold is a finite decimal number")
    return result
