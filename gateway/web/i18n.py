"""The pages' languages: Arabic (right to left), French and English.

Every string a page shows is a message id (``portal.log.title``) looked up in the catalogue of
the page's language; the ``.po`` catalogues under ``locales/`` are compiled in memory when the
room starts, so what ships is what a translator edits and nothing can drift from it. A message
id a catalogue lacks shows as the id itself, which the tests look for on every page.

The language is the one the person picked (a cookie), else the first of the browser's
``Accept-Language`` that Sijill speaks, else French. Dates and numbers are formatted per
locale by Babel, in Morocco's time zone.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, timedelta
from functools import cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime, format_skeleton, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import Translations

LOCALES_DIR = Path(__file__).with_name("locales")
LANGUAGES: tuple[str, ...] = ("ar", "fr", "en")
DEFAULT = "fr"
LANG_COOKIE = "sijill_lang"
# The languages' own names, shown in the language menu in their own script.
NATIVE_NAMES: Mapping[str, str] = {"ar": "العربية", "fr": "Français", "en": "English"}
# Babel's locale per language: Moroccan Arabic and French conventions (Western digits, as
# Moroccan administrations print them), British English.
_BABEL_LOCALE: Mapping[str, str] = {"ar": "ar_MA", "fr": "fr_MA", "en": "en_GB"}
TIME_ZONE = ZoneInfo("Africa/Casablanca")
Granularity = Literal["year", "month", "week", "day"]


@cache
def translations(lang: str) -> Translations:
    """The compiled catalogue of ``lang`` (``.po`` compiled to ``.mo`` in memory, once)."""
    with (LOCALES_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


def message_ids(lang: str) -> set[str]:
    """Every message id the catalogue of ``lang`` translates (non-empty)."""
    with (LOCALES_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    return {str(m.id) for m in catalog if m.id and m.string}


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    """The picked language, else the best of ``Accept-Language`` we speak, else French."""
    if cookie in LANGUAGES:
        return str(cookie)
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        base = tag.strip().split("-")[0].lower()
        if base in LANGUAGES and quality > 0:
            ranked.append((-quality, position, base))
    return sorted(ranked)[0][2] if ranked else DEFAULT


def direction(lang: str) -> str:
    return "rtl" if Locale.parse(_BABEL_LOCALE[lang]).character_order == "right-to-left" else "ltr"


@dataclass(frozen=True)
class Formats:
    """Dates, durations and numbers in one language's conventions."""

    lang: str

    @property
    def locale(self) -> str:
        return _BABEL_LOCALE[self.lang]

    def datetime(self, value: dt.datetime | str | int | None) -> str:
        """A time (aware datetime, RFC 3339 text or Unix nanoseconds) in Morocco's zone."""
        if value is None:
            return ""
        if isinstance(value, int):
            value = dt.datetime.fromtimestamp(value / 1e9, UTC)
        elif isinstance(value, str):
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return format_datetime(value, "medium", tzinfo=TIME_ZONE, locale=self.locale)

    def date(self, value: dt.datetime) -> str:
        return format_date(value, "medium", locale=self.locale)

    def day(self, value: dt.datetime) -> str:
        """A day of the current year, short (``6 déc.``)."""
        return format_skeleton("MMMd", value, locale=self.locale)

    def duration(self, iso: str) -> str:
        """An ISO 8601 duration of years, months or days (``P5Y``) in words."""
        body = iso.removeprefix("P")
        units: tuple[tuple[str, Granularity], ...] = (
            ("Y", "year"), ("M", "month"), ("W", "week"), ("D", "day")
        )  # fmt: skip
        for unit, name in units:
            if body.endswith(unit) and body[:-1].isdigit():
                days = {"year": 365, "month": 30, "week": 7, "day": 1}[name] * int(body[:-1])
                return format_timedelta(
                    timedelta(days=days), granularity=name, threshold=1000, locale=self.locale
                )
        return iso

    def age(self, value: dt.datetime | str | None) -> str:
        """How long ago, in words (``3 minutes``)."""
        if value is None:
            return ""
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return format_timedelta(dt.datetime.now(UTC) - value, locale=self.locale)

    def number(self, value: float | int, digits: int = 0) -> str:
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(value, format=pattern, locale=self.locale)

    def percent(self, value: float) -> str:
        return format_percent(value, locale=self.locale)
