"""Synthetic RSU declarations for the synthetic population (identity/synth.py): demos, tests,
benchmarks. Deterministic for a seed; plausible rather than representative (poorer rural
dwellings, urban apartments with more goods), so that the illustrative models put a realistic
share of households on either side of the program thresholds.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date
from typing import Any

from identity.synth import REFERENCE_DATE

__all__ = ["declaration", "group_households", "household_request"]

_RELATIONS = {"head": "head", "spouse": "spouse", "child": "child", "parent": "parent"}


def _age(birth_date: str, today: date = REFERENCE_DATE) -> int:
    born = date.fromisoformat(birth_date)
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _member(rng: random.Random, idcs: str, person: Mapping[str, Any]) -> dict[str, Any]:
    age = _age(str(person["birth_date"]))
    relation = _RELATIONS.get(str(person.get("role")), "other_relative")
    if age < 6:
        education, occupation = "none", "inactive"
    elif age < 15:
        education, occupation = rng.choice(("primary", "primary", "secondary")), "student"
    else:
        education = rng.choices(("none", "primary", "secondary", "higher"), (30, 30, 28, 12))[0]
        if age >= 65:
            occupation = rng.choice(("retired", "inactive"))
        elif age < 22 and rng.random() < 0.5:
            occupation = "student"
        else:
            occupation = rng.choices(
                ("employed", "self_employed", "unemployed", "inactive"), (38, 22, 14, 26)
            )[0]
    return {
        "idcs": idcs, "relation": relation, "sex": person["sex"], "age": age,
        "education": education, "occupation": occupation, "disability": rng.random() < 0.05,
    }  # fmt: skip


def declaration(rng: random.Random, region: str, province: str, size: int) -> dict[str, Any]:
    """One household's declaration (everything but the members)."""
    urban = rng.random() < 0.63  # Morocco: about 63 % urban (RGPH 2014)
    wealth = rng.random()  # one latent level drives the answers, so they hang together

    def has(p: float) -> bool:
        return rng.random() < p

    if urban:
        housing = rng.choices(
            ("villa", "apartment", "moroccan_house", "traditional_house", "shanty", "other"),
            (3 + 10 * wealth, 15 + 25 * wealth, 45, 10, 12 * (1 - wealth), 3),
        )[0]
    else:
        housing = rng.choices(
            ("rural_dwelling", "moroccan_house", "traditional_house", "shanty", "other"),
            (55, 20 + 20 * wealth, 15, 6 * (1 - wealth), 4),
        )[0]
    base = 40 + 400 * wealth * wealth
    decl: dict[str, Any] = {
        "area": "urban" if urban else "rural",
        "region": region,
        "province": province,
        "housing": {
            "type": housing,
            "occupancy": rng.choices(("owner", "tenant", "free", "other"), (55, 30, 12, 3))[0],
            "rooms": max(1, min(12, round(rng.gauss(1.5 + 3 * wealth, 1)))),
            "bathroom": has(0.3 + 0.6 * wealth),
            "kitchen": has(0.5 + 0.45 * wealth),
        },
        "utilities": {
            "water": "network"
            if has(0.55 + 0.4 * wealth if urban else 0.3 + 0.3 * wealth)
            else rng.choice(("standpipe", "well", "other")),
            "electricity": "network"
            if has(0.85 + 0.15 * wealth if urban else 0.7)
            else rng.choice(("solar", "none")),
            "sanitation": "sewer"
            if has(0.6 + 0.35 * wealth if urban else 0.1)
            else rng.choice(("septic", "none")),
            "cooking_fuel": rng.choices(
                ("gas", "electricity", "wood", "other"),
                (80, 5 + 10 * wealth, 4 if urban else 25, 3),
            )[0],
        },
        "spending": {
            "water": round(base * 0.3 * rng.uniform(0.5, 1.5)),
            "electricity": round(base * 0.6 * rng.uniform(0.5, 1.5)),
            "telephone": round(base * 0.4 * rng.uniform(0.3, 1.7)),
        },
        "durables": {
            "refrigerator": has(0.45 + 0.5 * wealth),
            "television": has(0.8 + 0.15 * wealth),
            "satellite_dish": has(0.6 + 0.3 * wealth),
            "washing_machine": has(0.1 + 0.7 * wealth),
            "computer": has(0.05 + 0.6 * wealth),
            "internet": has(0.1 + 0.7 * wealth),
            "car": has(0.02 + 0.5 * wealth * wealth),
            "motorcycle": has(0.12),
            "air_conditioner": has(0.4 * wealth * wealth),
            "water_heater": has(0.1 + 0.6 * wealth),
            "oven": has(0.2 + 0.5 * wealth),
            "landline": has(0.05 + 0.3 * wealth),
            "mobile_phones": max(
                0, min(size + 1, round(rng.gauss(size * (0.4 + 0.5 * wealth), 1)))
            ),
        },
    }
    if not urban:
        decl["agriculture"] = {
            "cattle": max(0, round(rng.gauss(2 * wealth, 1.5))),
            "sheep_goats": max(0, round(rng.gauss(8 * wealth, 4))),
            "land_ha": round(max(0.0, rng.gauss(3 * wealth, 1.5)), 2),
            "tractor": has(0.08 * wealth),
        }
    return decl


def household_request(
    rng: random.Random, people: Sequence[tuple[str, Mapping[str, Any]]]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``(members, declaration)`` for :meth:`rsu.HouseholdRegister.register_household`
    from ``(idcs, synth record)`` pairs of one synthetic household (head first)."""
    head = people[0][1]
    members = [_member(rng, idcs, person) for idcs, person in people]
    decl = declaration(rng, str(head["region"]), str(head["province"]), len(members))
    return members, decl


def group_households(
    records: Iterable[Mapping[str, Any]], issued: Iterable[str | None]
) -> Iterator[list[tuple[str, Mapping[str, Any]]]]:
    """Group synth records with their issued IDCS by household (records not enrolled are left
    out; a household without its head is skipped)."""
    current: list[tuple[str, Mapping[str, Any]]] = []
    current_id: object = None
    for record, idcs in zip(records, issued, strict=True):
        if record["household"] != current_id:
            if current and current[0][1].get("role") == "head":
                yield current
            current, current_id = [], record["household"]
        if idcs is not None:
            current.append((str(idcs), record))
    if current and current[0][1].get("role") == "head":
        yield current
