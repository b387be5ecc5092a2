"""The official behind an agency's call, in the browser: the citizen's log page says "an
official of agency X, case Y" with the official's reference in each language, and the CNDP
console lists one official's accesses (accessible and translated, as every page)."""

from __future__ import annotations

import re
from typing import Any

from tests.web.conftest import (
    LANGS,
    OFFICIAL_CALL,
    WebDemo,
    new_page,
    sign_in_auditor,
    sign_in_citizen,
)
from tests.web.test_pages import _check

OFFICIAL_ID = re.compile(r"off_[a-z2-7]{32}")
SAYS = {"ar": "موظف لدى", "fr": "Un agent de", "en": "An official of"}


def test_the_citizen_sees_which_agencys_official_acted_on_which_case(
    browser: Any, demo: WebDemo
) -> None:
    page = new_page(browser, demo, "fr", inject=True)
    try:
        sign_in_citizen(page, demo, 0)
        problems = []
        for lang in LANGS:
            page.goto(f"{demo.url}/portal/language?to={lang}&next=/portal/log")
            acted = page.locator("dd.official")
            assert acted.count() == 3  # the lookup, the query, the eligibility question
            text = acted.first.inner_text()
            assert SAYS[lang] in text
            assert OFFICIAL_CALL["case"] in text
            assert OFFICIAL_ID.search(text), text
            problems += _check(page, lang, "/portal/log")
        assert problems == [], "\n".join(problems)
    finally:
        page.context.close()


def test_the_auditor_lists_one_officials_accesses(browser: Any, demo: WebDemo) -> None:
    page = new_page(browser, demo, "fr", inject=True)
    try:
        sign_in_auditor(page, demo)
        page.goto(f"{demo.url}/console/entries")
        link = page.locator("a[href^='/console/entries?official=']").first
        official = link.get_attribute("href").split("=", 1)[1]
        assert OFFICIAL_ID.fullmatch(official)
        problems = []
        for lang in LANGS:
            target = f"/console/entries?official={official}"
            page.goto(f"{demo.url}/console/language?to={lang}&next={target}")
            rows = page.locator("tbody tr")
            assert rows.count() == 3
            assert page.locator("#official").input_value() == official
            for i in range(rows.count()):
                assert OFFICIAL_CALL["case"] in rows.nth(i).inner_text()
            problems += _check(page, lang, target)
        assert problems == [], "\n".join(problems)
        # Every other entry of the log names no official, or not this one.
        page.goto(f"{demo.url}/console/entries")
        assert page.locator("tbody tr").count() > 3
    finally:
        page.context.close()
