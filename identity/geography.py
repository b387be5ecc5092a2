"""Morocco's 12 regions (2015 territorial division, decree 2.15.40) and their 75 provinces and
prefectures, with each region's 2014 census population (thousands) used to weight synthetic
populations. Names are in their usual French/Latin spelling, as the register records them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

__all__ = ["PROVINCES", "REGIONS", "REGION_POPULATION", "province_region"]

REGIONS: Final[Mapping[str, tuple[str, ...]]] = {
    "Tanger-Tétouan-Al Hoceïma": (
        "Tanger-Assilah",
        "M'diq-Fnideq",
        "Tétouan",
        "Fahs-Anjra",
        "Larache",
        "Al Hoceïma",
        "Chefchaouen",
        "Ouezzane",
    ),
    "L'Oriental": (
        "Oujda-Angad",
        "Nador",
        "Driouch",
        "Jerada",
        "Berkane",
        "Taourirt",
        "Guercif",
        "Figuig",
    ),
    "Fès-Meknès": (
        "Fès",
        "Meknès",
        "El Hajeb",
        "Ifrane",
        "Moulay Yacoub",
        "Sefrou",
        "Boulemane",
        "Taounate",
        "Taza",
    ),
    "Rabat-Salé-Kénitra": (
        "Rabat",
        "Salé",
        "Skhirate-Témara",
        "Kénitra",
        "Khémisset",
        "Sidi Kacem",
        "Sidi Slimane",
    ),
    "Béni Mellal-Khénifra": ("Béni Mellal", "Azilal", "Fquih Ben Salah", "Khénifra", "Khouribga"),
    "Casablanca-Settat": (
        "Casablanca",
        "Mohammédia",
        "El Jadida",
        "Nouaceur",
        "Médiouna",
        "Benslimane",
        "Berrechid",
        "Settat",
        "Sidi Bennour",
    ),
    "Marrakech-Safi": (
        "Marrakech",
        "Chichaoua",
        "Al Haouz",
        "El Kelâa des Sraghna",
        "Essaouira",
        "Rehamna",
        "Safi",
        "Youssoufia",
    ),
    "Drâa-Tafilalet": ("Errachidia", "Ouarzazate", "Midelt", "Tinghir", "Zagora"),
    "Souss-Massa": (
        "Agadir Ida-Outanane",
        "Inezgane-Aït Melloul",
        "Chtouka-Aït Baha",
        "Taroudant",
        "Tiznit",
        "Tata",
    ),
    "Guelmim-Oued Noun": ("Guelmim", "Assa-Zag", "Tan-Tan", "Sidi Ifni"),
    "Laâyoune-Sakia El Hamra": ("Laâyoune", "Boujdour", "Tarfaya", "Es-Semara"),
    "Dakhla-Oued Ed-Dahab": ("Oued Ed-Dahab", "Aousserd"),
}

# Recensement général de la population et de l'habitat 2014 (HCP), thousands.
REGION_POPULATION: Final[Mapping[str, int]] = {
    "Tanger-Tétouan-Al Hoceïma": 3556,
    "L'Oriental": 2314,
    "Fès-Meknès": 4236,
    "Rabat-Salé-Kénitra": 4581,
    "Béni Mellal-Khénifra": 2520,
    "Casablanca-Settat": 6862,
    "Marrakech-Safi": 4520,
    "Drâa-Tafilalet": 1635,
    "Souss-Massa": 2676,
    "Guelmim-Oued Noun": 433,
    "Laâyoune-Sakia El Hamra": 368,
    "Dakhla-Oued Ed-Dahab": 143,
}

PROVINCES: Final[Mapping[str, str]] = {
    province: region for region, provinces in REGIONS.items() for province in provinces
}


def province_region(province: str) -> str | None:
    """The region a province or prefecture belongs to, or None if it is not one."""
    return PROVINCES.get(province)
