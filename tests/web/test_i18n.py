"""The pages' language: the person's pick, else the browser's Accept-Language, else French;
Arabic right to left; dates and numbers in each language's conventions."""

from __future__ import annotations

from gateway.web.i18n import Formats, direction, negotiate, translations


def test_the_language_picked_wins_over_the_browsers() -> None:
    assert negotiate("en", "ar-MA,ar;q=0.9") == "en"


def test_accept_language_chooses_the_best_language_spoken() -> None:
    assert negotiate(None, "de-DE,ar-MA;q=0.8,fr;q=0.9") == "fr"
    assert negotiate(None, "ar-MA,fr;q=0.5") == "ar"
    assert negotiate(None, "en;q=0,ar;q=0.1") == "ar"


def test_french_when_nothing_matches() -> None:
    assert negotiate("xx", "de,es;q=0.5") == "fr"
    assert negotiate(None, None) == "fr"


def test_arabic_reads_right_to_left() -> None:
    assert direction("ar") == "rtl"
    assert direction("fr") == direction("en") == "ltr"


def test_catalogues_compile_and_translate() -> None:
    assert translations("ar").gettext("portal.nav.log") == "سجل الاطلاع"
    assert translations("fr").gettext("portal.nav.log") == "Journal des accès"


def test_dates_and_numbers_follow_the_language() -> None:
    when = "2026-12-06T13:00:00Z"
    assert "déc." in Formats("fr").datetime(when)
    assert "14:00" in Formats("en").datetime(when)  # Morocco's time zone
    assert Formats("en").number(12345.5, 1) == "12,345.5"
    assert Formats("fr").number(12345.5, 1).replace("\u202f", " ") == "12 345,5"
    assert Formats("ar").duration("P5Y") == "5 سنوات"
