"""The IDCS: Verhoeff check digit, MOSIP UIN filters, CSPRNG issuance, uniqueness."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identity import Idcs, InvalidIdcs, passes_filters, verhoeff_check_digit, verhoeff_valid
from identity.idcs import random_idcs
from identity.register import draw_unique

digits = st.text(alphabet="0123456789", min_size=1, max_size=20)
bodies = st.text(alphabet="0123456789", min_size=9, max_size=9)


def mosip_filters(n: str) -> bool:
    """An independent statement of the filters, written as MOSIP's regexes and rules."""
    if not re.fullmatch(r"[2-9]\d{9}", n):
        return False
    if re.search(r"(\d)\d{0,1}\1", n):  # repeating-limit=2
        return False
    if re.search(r"(\d{2,}).*?\1", n):  # repeating-block-limit=2
        return False
    for i in range(len(n) - 2):  # sequence-limit=3
        a, b, c = (int(x) for x in n[i : i + 3])
        if b - a == c - b and abs(b - a) == 1:
            return False
    if n[:5] == n[5:] or n[:5] == n[5:][::-1]:
        return False
    rotations = {"142857"[i:] + "142857"[:i] for i in range(6)}
    return not any(r in n for r in rotations)


def test_verhoeff_matches_published_examples() -> None:
    # Worked examples from Verhoeff's scheme as published (Wikipedia, "Verhoeff algorithm").
    assert verhoeff_check_digit("236") == "3"
    assert verhoeff_check_digit("12345") == "1"
    assert verhoeff_check_digit("142857") == "0"
    assert verhoeff_valid("2363") and not verhoeff_valid("2364")


@given(digits)
def test_appending_the_check_digit_always_validates(body: str) -> None:
    assert verhoeff_valid(body + verhoeff_check_digit(body))


@given(digits, st.data())
def test_every_single_digit_error_is_detected(body: str, data: st.DataObject) -> None:
    number = body + verhoeff_check_digit(body)
    i = data.draw(st.integers(0, len(number) - 1))
    wrong = data.draw(st.sampled_from([d for d in "0123456789" if d != number[i]]))
    assert not verhoeff_valid(number[:i] + wrong + number[i + 1 :])


@given(digits.filter(lambda s: len(s) >= 1), st.data())
def test_every_adjacent_transposition_is_detected(body: str, data: st.DataObject) -> None:
    number = body + verhoeff_check_digit(body)
    i = data.draw(st.integers(0, len(number) - 2))
    if number[i] == number[i + 1]:
        return  # swapping equal digits changes nothing
    swapped = number[:i] + number[i + 1] + number[i] + number[i + 2 :]
    assert not verhoeff_valid(swapped)


def test_every_single_error_and_transposition_of_a_sample_of_issued_idcs_is_detected() -> None:
    for _ in range(2000):
        n = random_idcs()
        for i in range(10):
            for d in "0123456789":
                if d != n[i]:
                    assert not verhoeff_valid(n[:i] + d + n[i + 1 :])
        for i in range(9):
            if n[i] != n[i + 1]:
                assert not verhoeff_valid(n[:i] + n[i + 1] + n[i] + n[i + 2 :])


@given(st.text(alphabet="0123456789", min_size=10, max_size=10))
def test_filters_agree_with_mosip_rules_on_any_ten_digits(n: str) -> None:
    assert passes_filters(n) == mosip_filters(n)


@pytest.mark.parametrize(
    "number",
    [
        "1234567890",
        "0987654321",
        "2223456789",
        "2424242424",
        "2345623456",
        "9876543210",
        "2142857390",
        "2714285390",
    ],
)
def test_memorable_numbers_are_filtered(number: str) -> None:
    assert not passes_filters(number)


def test_issued_idcs_pass_verhoeff_and_every_filter() -> None:
    for _ in range(100_000):
        n = random_idcs()
        assert verhoeff_valid(n) and mosip_filters(n), n


@given(bodies)
def test_idcs_accepts_exactly_the_valid_filtered_numbers(body: str) -> None:
    n = body + verhoeff_check_digit(body)
    if mosip_filters(n):
        assert Idcs(n) == n
    else:
        with pytest.raises(InvalidIdcs):
            Idcs(n)


@pytest.mark.parametrize("bad", ["", "12345", "23456789012", "23456789a1", " 2345678901"])
def test_malformed_idcs_is_refused_without_echoing_it(bad: str) -> None:
    with pytest.raises(InvalidIdcs) as info:
        Idcs(bad)
    assert bad.strip() not in str(info.value) or not bad.strip()


def test_idcs_repr_masks_the_middle_digits() -> None:
    idcs = Idcs.generate()
    assert idcs[2:8] not in repr(idcs)


def test_raw_draws_repeat_only_as_a_pool_of_tens_of_millions_predicts() -> None:
    # With ~70 M valid numbers, n draws repeat about n^2 / (2 * 70 M) times: ~18 in 50,000.
    # A generator confined to a pool of 20 M or fewer would average 62 or more.
    n = 50_000
    draws = [random_idcs() for _ in range(n)]
    repeats = n - len(set(draws))
    assert repeats < 60


def test_draw_unique_redraws_every_number_the_register_already_holds() -> None:
    # The issuance path enrol_many uses: draw a batch, drop those the register holds, redraw.
    issued: set[str] = set()
    reported: list[int] = []

    def taken(candidates: list[str]) -> set[str]:
        # The register holds the batch so far plus, on the first look, half of the candidates.
        hit = issued.intersection(candidates)
        if not reported:
            hit |= set(candidates[::2])
            issued.update(hit)
        reported.append(len(hit))
        return hit

    for _ in range(3):
        batch = [str(i) for i in draw_unique(5_000, taken)]
        assert len(set(batch)) == 5_000
        assert not issued.intersection(batch)
        issued.update(batch)
    assert reported[0] >= 2_500  # the forced collisions were reported and redrawn
