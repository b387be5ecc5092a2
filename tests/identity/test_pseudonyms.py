"""Sector pseudonyms: unlinkable across sectors, stable within one, no cross-sector oracle,
rotation by key version."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from identity import Idcs, PersonIn, Register, SectorPseudonym, SectorPseudonyms, UnknownPseudonym
from identity.pseudonyms import format_pseudonym
from identity.synth import generate
from rsu import Subjects, resolve_many, resolve_subjects

Resolve = Callable[[str, str], Idcs]


@pytest.fixture
def people(register: Register) -> list[Idcs]:
    records = [
        {k: v for k, v in r.items() if k not in ("household", "role")}
        for r in generate(3, 2, seed=11)
    ]
    issued = register.enrol_many([PersonIn.model_validate(r) for r in records])
    assert all(i is not None for i in issued)
    return [i for i in issued if i is not None]


def test_two_sectors_get_different_pseudonyms_for_one_person(
    sector_pseudonyms: SectorPseudonyms, people: list[Idcs]
) -> None:
    health = sector_pseudonyms.pseudonym_for(people[0], "health")
    social = sector_pseudonyms.pseudonym_for(people[0], "social")
    assert health != social
    # Not merely a different prefix: the MAC part differs too.
    assert health.split(".")[2] != social.split(".")[2]
    assert people[0] not in health and people[0] not in social


def test_the_same_sector_always_gets_the_same_pseudonym(
    sector_pseudonyms: SectorPseudonyms, people: list[Idcs]
) -> None:
    first = sector_pseudonyms.pseudonym_for(people[0], "health")
    assert sector_pseudonyms.pseudonym_for(people[0], "health") == first
    assert sector_pseudonyms.pseudonym_for(people[1], "health") != first


def test_a_pseudonym_resolves_back_to_the_person_in_its_sector(
    sector_pseudonyms: SectorPseudonyms, people: list[Idcs], resolve: Resolve
) -> None:
    alias = sector_pseudonyms.pseudonym_for(people[1], "health")
    assert resolve("health", alias) == people[1]


def test_another_sectors_pseudonym_gets_the_same_answer_as_an_unknown_one(
    sector_pseudonyms: SectorPseudonyms, people: list[Idcs], resolve: Resolve
) -> None:
    theirs = sector_pseudonyms.pseudonym_for(people[0], "social")
    forged = format_pseudonym("health", 1, b"\x00" * 32)
    relabelled = "health" + theirs[len("social") :]
    answers = []
    for presented in (theirs, forged, relabelled, "not-a-pseudonym", ""):
        with pytest.raises(UnknownPseudonym) as info:
            resolve("health", presented)
        answers.append((type(info.value), str(info.value)))
    assert len(set(answers)) == 1


def test_rotation_issues_a_new_version_and_old_ones_resolve_until_retired(
    sector_pseudonyms: SectorPseudonyms, people: list[Idcs], resolve: Resolve
) -> None:
    v1 = sector_pseudonyms.pseudonym_for(people[0], "health")
    assert sector_pseudonyms.rotate("health") == 2
    v2 = sector_pseudonyms.pseudonym_for(people[0], "health")
    assert (SectorPseudonym(v1).version, SectorPseudonym(v2).version) == (1, 2)
    assert v1 != v2
    assert resolve("health", v1) == people[0]
    assert resolve("health", v2) == people[0]
    assert sector_pseudonyms.retire("health", 1) == 1
    with pytest.raises(UnknownPseudonym):
        resolve("health", v1)
    assert resolve("health", v2) == people[0]
    # Another sector's keys are untouched by this rotation.
    assert sector_pseudonyms.current_version("social") == 1


def test_resolving_many_answers_each_pseudonym_as_resolving_it_alone(
    sector_pseudonyms: SectorPseudonyms, people: list[Idcs], engine: Engine
) -> None:
    v1 = sector_pseudonyms.pseudonym_for(people[0], "health")
    sector_pseudonyms.rotate("health")
    v2 = sector_pseudonyms.pseudonym_for(people[0], "health")
    other = sector_pseudonyms.pseudonym_for(people[1], "health")
    theirs = sector_pseudonyms.pseudonym_for(people[2], "social")
    sector_pseudonyms.retire("health", 1)
    forged = format_pseudonym("health", 2, b"\x00" * 32)
    presented = [v2, v1, theirs, other, forged, "health" + theirs[6:], "not-a-pseudonym", v2]

    def alone(pseudonym: str) -> Subjects | None:
        try:
            return resolve_subjects(engine, "health", pseudonym)
        except UnknownPseudonym:
            return None

    many = resolve_many(engine, "health", presented)
    assert set(many) == set(presented)
    assert {p: many[p] for p in presented} == {p: alone(p) for p in presented}
    assert many[v2] is not None and many[v2].idcs == people[0]
    assert many[other] is not None and many[other].idcs == people[1]
    assert [p for p in presented if many[p] is None] == presented[1:3] + presented[4:7]


def test_the_current_version_cannot_be_retired(sector_pseudonyms: SectorPseudonyms) -> None:
    with pytest.raises(ValueError):
        sector_pseudonyms.retire("health", sector_pseudonyms.current_version("health"))


@given(
    st.from_regex(r"[a-z][a-z0-9_]{0,31}", fullmatch=True),
    st.integers(1, 999_999),
    st.binary(min_size=32, max_size=32),
)
def test_pseudonym_text_carries_sector_version_and_the_whole_mac(
    sector: str, version: int, mac: bytes
) -> None:
    alias = format_pseudonym(sector, version, mac)
    assert (alias.sector, alias.version) == (sector, version)
    body = alias.split(".")[2]
    assert body == body.lower() and "=" not in body
    assert base64.b32decode(body.upper() + "====") == mac
