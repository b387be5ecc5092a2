"""A synthetic Moroccan population for demos, tests and benchmarks (never real people).

Households are drawn region by region in proportion to the 2014 census, each with a head
(84% men, as HCP reports 16% of households headed by women), usually a spouse (who keeps her
own family name, as in Morocco), children carrying the father's family name and, in some large
households, a parent of the head. Names come in Arabic script with their usual Latin
transliteration; CNIE numbers (adults, and about half of 16-17 year olds) are unique by
construction; phones are Moroccan mobile numbers. The lists (given and family names, streets,
CNIE prefixes) are package data, ``identity/data``, read once when this module is imported.

Deterministic for a seed (``random.Random``, not the CSPRNG: this is test data, and reproducing
it exactly is the point) and streaming: :func:`generate` yields one person at a time, so a
million persons never sit in memory. Ages are computed against a fixed reference date so the
same seed gives the same file on any day.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator
from datetime import date, timedelta
from importlib.resources import files
from typing import IO, Any, Final

from identity.geography import REGION_POPULATION, REGIONS

__all__ = ["CSV_COLUMNS", "REFERENCE_DATE", "generate", "write_csv", "write_jsonl"]

REFERENCE_DATE: Final = date(2025, 12, 31)
MEAN_HOUSEHOLD: Final = 4.6  # RGPH 2014 average household size


def _lines(name: str) -> tuple[str, ...]:
    """A data file of this package (identity/data), one entry a line."""
    text = files("identity").joinpath("data", name).read_text(encoding="utf-8")
    return tuple(line for line in text.splitlines() if line)


def _names(name: str) -> tuple[tuple[str, str], ...]:
    """Names in Arabic script with their usual Latin transliteration, a tab between them."""
    pairs = []
    for line in _lines(name):
        arabic, latin = line.split("\t")
        pairs.append((arabic, latin))
    return tuple(pairs)


_MALE: Final = _names("given_names_male.tsv")
_FEMALE: Final = _names("given_names_female.tsv")
_FAMILY: Final = _names("family_names.tsv")
_STREETS: Final = _lines("streets.txt")
_WAYS: Final = ("Rue", "Avenue", "Boulevard", "Derb", "Hay", "Lotissement")
_FOREIGN: Final = ("SEN", "CIV", "FRA", "ESP", "DZA", "TUN", "SYR", "MLI", "GIN", "CMR")
# Letter prefixes as on CNIE cards (the issuing office); number space = len(prefixes) * 10**6.
_CNIE_PREFIXES: Final = _lines("cnie_prefixes.txt")
_CNIE_SPACE: Final = len(_CNIE_PREFIXES) * 10**6
# A prime coprime with the space: k -> (k * step + offset) mod space is a bijection that scatters
# consecutive persons across prefixes and numbers.
_CNIE_STEP: Final = 39_916_801

CSV_COLUMNS: Final = (
    "household", "role", "given_name_ar", "family_name_ar", "given_name_lat", "family_name_lat",
    "sex", "birth_date", "birth_place", "cnie", "nationality", "residency_status", "address",
    "region", "province", "phone",
)  # fmt: skip


class _Population:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.cnie_offset = random.Random(f"cnie:{seed}").randrange(_CNIE_SPACE)
        self.cnie_count = 0
        self.regions = list(REGION_POPULATION)
        self.region_weights = list(REGION_POPULATION.values())

    def cnie(self) -> str:
        # Unique within one generated population by construction: a bijection of a counter.
        j = (self.cnie_count * _CNIE_STEP + self.cnie_offset) % _CNIE_SPACE
        self.cnie_count += 1
        prefix, number = divmod(j, 10**6)
        return f"{_CNIE_PREFIXES[prefix]}{number}"

    def birth_date(self, age: int) -> date:
        born = REFERENCE_DATE - timedelta(days=365 * age + self.rng.randrange(365))
        return born

    def person(
        self, *, sex: str, age: int, family: tuple[str, str], given: tuple[str, str],
        home: dict[str, str], birth_province: str, foreign: str | None,
    ) -> dict[str, Any]:  # fmt: skip
        rng = self.rng
        cnie = None
        if foreign is None and (age >= 18 or (age >= 16 and rng.random() < 0.5)):
            cnie = self.cnie()
        phone = None
        if age >= 16 and rng.random() < 0.9:
            phone = f"+212{rng.choice('67')}{rng.randrange(10**8):08d}"
        return {
            "given_name_ar": given[0], "family_name_ar": family[0],
            "given_name_lat": given[1], "family_name_lat": family[1],
            "sex": sex, "birth_date": self.birth_date(age).isoformat(),
            "birth_place": birth_province, "cnie": cnie,
            "nationality": foreign or "MAR",
            "residency_status": "resident" if foreign else "citizen",
            **home, "phone": phone,
        }  # fmt: skip

    def household(self, number: int, size: int) -> Iterator[dict[str, Any]]:
        rng = self.rng
        region = rng.choices(self.regions, self.region_weights)[0]
        province = rng.choice(REGIONS[region])
        home = {
            "address": f"{rng.randrange(1, 300)} {rng.choice(_WAYS)} {rng.choice(_STREETS)}, "
            f"{province}",
            "region": region,
            "province": province,
        }
        foreign = rng.choice(_FOREIGN) if rng.random() < 0.01 else None

        def born_in() -> str:
            # Most people live in the province they were born in; some moved.
            if rng.random() < 0.75:
                return province
            other = rng.choice(self.regions)
            return rng.choice(REGIONS[other])

        hid = f"H{number:08d}"
        head_sex = "F" if rng.random() < 0.16 else "M"
        head_age = rng.randint(22 if size == 1 else 25, 85)
        family = rng.choice(_FAMILY)
        used: set[str] = set()

        def given(sex: str) -> tuple[str, str]:
            names = _MALE if sex == "M" else _FEMALE
            while True:
                name = rng.choice(names)
                if name[0] not in used:  # siblings never share a given name
                    used.add(name[0])
                    return name

        yield {"household": hid, "role": "head", **self.person(
            sex=head_sex, age=head_age, family=family, given=given(head_sex),
            birth_province=born_in(), home=home, foreign=foreign)}  # fmt: skip
        left = size - 1
        mother_age = head_age if head_sex == "F" else None
        if left and (head_sex == "M" and rng.random() < 0.92):
            spouse_age = max(18, head_age - rng.randint(0, 10))
            mother_age = spouse_age
            yield {"household": hid, "role": "spouse", **self.person(
                sex="F", age=spouse_age, family=rng.choice(_FAMILY), given=given("F"),
                birth_province=born_in(), home=home, foreign=foreign)}  # fmt: skip
            left -= 1
        if left >= 4 and rng.random() < 0.3:
            sex = rng.choice("FM")
            yield {"household": hid, "role": "parent", **self.person(
                sex=sex, age=min(100, head_age + rng.randint(20, 35)),
                family=family if sex == "M" else rng.choice(_FAMILY), given=given(sex),
                birth_province=born_in(), home=home, foreign=foreign)}  # fmt: skip
            left -= 1
        youngest_parent = mother_age if mother_age is not None else head_age
        oldest_child = max(0, min(35, youngest_parent - 18))
        for _ in range(left):
            sex = rng.choice("FM")
            yield {"household": hid, "role": "child", **self.person(
                sex=sex, age=rng.randint(0, oldest_child), family=family, given=given(sex),
                birth_province=province if rng.random() < 0.9 else born_in(),
                home=home, foreign=foreign)}  # fmt: skip


def generate(
    persons: int, households: int | None = None, seed: int = 0
) -> Iterator[dict[str, Any]]:
    """Yield ``persons`` synthetic persons in ``households`` households (default: persons /
    4.6), each a dict of :class:`identity.PersonIn` fields plus ``household`` and ``role``."""
    if persons < 0:
        raise ValueError("persons must be >= 0")
    if households is None:
        households = max(1, round(persons / MEAN_HOUSEHOLD)) if persons else 0
    if households > persons or (persons and households < 1):
        raise ValueError("need 1 <= households <= persons")
    population = _Population(seed)
    rng = population.rng
    produced = 0
    for h in range(households):
        remaining, left = persons - produced, households - h
        if left == 1:
            size = remaining
        else:
            mean = remaining / left
            size = round(rng.gauss(mean, max(1.0, mean / 3)))
            # Keep at least one person for each household still to come.
            size = max(1, min(size, remaining - (left - 1), 15))
        for person in population.household(h + 1, size):
            produced += 1
            yield person


def write_jsonl(records: Iterator[dict[str, Any]], out: IO[str]) -> int:
    n = 0
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
        n += 1
    return n


def write_csv(records: Iterator[dict[str, Any]], out: IO[str]) -> int:
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    n = 0
    for record in records:
        writer.writerow({k: ("" if v is None else v) for k, v in record.items()})
        n += 1
    return n
