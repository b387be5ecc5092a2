"""Enrolment input validation, and the synthetic Moroccan population."""

from __future__ import annotations

import itertools
import unicodedata
from collections import Counter, defaultdict
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from identity import PersonIn, field_problems
from identity.geography import PROVINCES, REGION_POPULATION, REGIONS
from identity.synth import CSV_COLUMNS, REFERENCE_DATE, generate

GOOD: dict[str, Any] = {
    "given_name_ar": "فاطمة الزهراء", "family_name_ar": "العلوي", "given_name_lat": "Fatima Zahra",
    "family_name_lat": "El Alaoui", "sex": "F", "birth_date": "1992-11-03",
    "birth_place": "Marrakech", "cnie": "E654321", "address": "5 Derb Moulay Ismail, Marrakech",
    "region": "Marrakech-Safi", "province": "Marrakech", "phone": "06 61 23 45 67",
}  # fmt: skip


def problems(**changes: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        PersonIn.model_validate({**GOOD, **changes})
    return dict(field_problems(info.value))


def test_a_well_formed_person_is_accepted_and_normalised() -> None:
    p = PersonIn.model_validate(GOOD)
    assert p.phone == "+212661234567"
    assert p.vault_fields()["birth_date"] == "1992-11-03"
    assert p.nationality == "MAR"


@pytest.mark.parametrize("field,value", [
    ("given_name_ar", "Fatima"), ("family_name_lat", "العلوي"), ("birth_date", "1992-02-30"),
    ("birth_date", (date.today() + timedelta(days=1)).isoformat()), ("birth_date", "1850-01-01"),
    ("cnie", "123456"), ("cnie", "ABC123"), ("cnie", "A1234567"), ("phone", "+33612345678"),
    ("phone", "0812345678"), ("sex", "X"), ("region", "Andalucía"), ("nationality", "MA"),
])  # fmt: skip
def test_invalid_fields_are_named_with_a_reason(field: str, value: str) -> None:
    assert field in problems(**{field: value})


def test_province_must_belong_to_the_region() -> None:
    assert "province" in problems(province="Tanger-Assilah")


def test_citizens_are_moroccan_and_residents_foreign() -> None:
    assert "residency_status" in problems(nationality="FRA")
    assert PersonIn.model_validate(
        {**GOOD, "nationality": "FRA", "residency_status": "resident", "cnie": None}
    )


def test_unknown_fields_are_refused() -> None:
    assert "religion" in problems(religion="x")


@given(st.text(max_size=40).map(lambda s: f"Qx{s}7z"))
def test_validation_messages_never_echo_the_submitted_value(value: str) -> None:
    # Every value carries "7z", which no message of ours contains: finding it means an echo.
    for field in ("given_name_ar", "given_name_lat", "cnie", "phone", "birth_date", "region"):
        try:
            PersonIn.model_validate({**GOOD, field: value})
        except ValidationError as exc:
            for name, reason in field_problems(exc):
                assert "7z" not in reason and "7z" not in name


def test_same_seed_gives_the_same_population_and_another_seed_another() -> None:
    a = list(generate(300, 70, seed=5))
    assert a == list(generate(300, 70, seed=5))
    assert a != list(generate(300, 70, seed=6))


def test_generation_streams_without_materialising_the_population() -> None:
    # A billion persons: only possible if nothing is built up front.
    first = list(itertools.islice(generate(10**9, seed=1), 5))
    assert len(first) == 5


def test_requested_counts_are_exact_and_every_record_is_enrollable() -> None:
    records = list(generate(5000, 1100, seed=3))
    assert len(records) == 5000
    assert len({r["household"] for r in records}) == 1100
    for r in records:
        assert set(r) == set(CSV_COLUMNS)
        PersonIn.model_validate({k: v for k, v in r.items() if k not in ("household", "role")})


def test_households_have_one_head_and_plausible_members() -> None:
    by_household: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in generate(5000, seed=9):
        by_household[r["household"]].append(r)
    for members in by_household.values():
        roles = Counter(m["role"] for m in members)
        assert roles["head"] == 1 and roles["spouse"] <= 1
        head = next(m for m in members if m["role"] == "head")
        head_born = date.fromisoformat(head["birth_date"])
        for m in members:
            assert m["region"] == head["region"] and m["address"] == head["address"]
            if m["role"] == "child":
                assert date.fromisoformat(m["birth_date"]) > head_born + timedelta(days=365 * 17)
                assert m["family_name_ar"] == head["family_name_ar"]
        given = [m["given_name_ar"] for m in members]
        assert len(given) == len(set(given))
    sizes = [len(m) for m in by_household.values()]
    assert 3.5 < sum(sizes) / len(sizes) < 5.5  # Morocco: 4.6 (RGPH 2014)


def test_names_are_in_arabic_and_latin_script_and_places_are_moroccan() -> None:
    records = list(generate(3000, seed=4))
    for r in records:
        for ch in r["given_name_ar"] + r["family_name_ar"]:
            assert ch == " " or "ARABIC" in unicodedata.name(ch)
        assert all(
            ch == " " or ch == "-" or "LATIN" in unicodedata.name(ch)
            for ch in r["given_name_lat"] + r["family_name_lat"]
        )
        assert PROVINCES[r["province"]] == r["region"] and r["birth_place"] in PROVINCES
    assert len({r["given_name_ar"] for r in records}) > 150
    assert len({r["family_name_ar"] for r in records}) > 150
    # Every region appears, Casablanca-Settat the most (largest population in 2014).
    by_region = Counter(r["region"] for r in records)
    assert set(by_region) == set(REGIONS)
    assert by_region.most_common(1)[0][0] == max(REGION_POPULATION, key=REGION_POPULATION.get)


def test_adults_hold_unique_cnie_numbers_and_young_children_none() -> None:
    records = list(generate(20_000, seed=8))
    numbers = [r["cnie"] for r in records if r["cnie"]]
    assert len(numbers) == len(set(numbers))
    for r in records:
        age = (REFERENCE_DATE - date.fromisoformat(r["birth_date"])).days // 365
        if age < 16:
            assert r["cnie"] is None
        elif age >= 18 and r["residency_status"] == "citizen":
            assert r["cnie"]
