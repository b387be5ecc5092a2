"""The citizen's household page in Chromium, in Arabic, French and English: the composition
by relation, the declaration, and a change a registration office just made (a birth) at the
top of the history, in the page's language (axe-core and the translation checks are
tests/web/test_pages.py's walk, which includes this page)."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from tests.web.conftest import Citizens, WebDemo, office_token, screenshot

CITIZEN_FOR = {"ar": 0, "fr": 1, "en": 2}
BIRTH = {"ar": "ولادة", "fr": "naissance", "en": "birth"}
JOINED = {"ar": "انضمام فرد", "fr": "Un membre est arrivé", "en": "A member joined"}
BABIES = {"ar": ("سلمى", "Salma"), "fr": ("ريم", "Rim"), "en": ("هدى", "Houda")}


def _a_birth(demo: WebDemo, household_id: str, lang: str) -> None:
    """The demo office enrols a newborn in the RNP and adds her to the household."""
    headers = {"Authorization": f"Bearer {office_token(demo)}"}
    arabic, latin = BABIES[lang]
    enrolled = httpx.post(f"{demo.url}/v1/rnp/persons", headers=headers, json={
        "given_name_ar": arabic, "family_name_ar": "المنصوري", "given_name_lat": latin,
        "family_name_lat": "Mansouri", "sex": "F", "birth_date": "2026-11-02",
        "birth_place": "Rabat", "address": "7 Rue Al Amal, Rabat",
        "region": "Rabat-Salé-Kénitra", "province": "Rabat",
    })  # fmt: skip
    assert enrolled.status_code == 201, enrolled.text
    added = httpx.post(
        f"{demo.url}/v1/rsu/households/{household_id}/members",
        headers=headers,
        json={
            "member": {"idcs": enrolled.json()["idcs"], "relation": "child", "sex": "F", "age": 0},
            "reason": "birth",
        },
    )
    assert added.status_code == 200, added.text


@pytest.mark.parametrize("lang", ["ar", "fr", "en"])
def test_the_household_page_shows_the_members_the_declaration_and_each_change(
    citizens: Citizens, demo: WebDemo, lang: str
) -> None:
    page = citizens.page(CITIZEN_FOR[lang], lang, "/portal/household")
    expect(page.locator("a[aria-current=page]")).to_have_attribute("href", "/portal/household")
    expect(page.locator("ul.members li strong")).to_have_count(1)  # "you", once
    household_id = page.locator("#household-id").inner_text()
    before = page.locator("li.change").count()
    assert before >= 1  # its registration at least

    _a_birth(demo, household_id, lang)
    page.reload()
    changes = page.locator("li.change")
    expect(changes).to_have_count(before + 1)
    newest = changes.first
    expect(newest).to_have_attribute("data-kind", "member_added")
    expect(newest.locator("h3")).to_contain_text(JOINED[lang])
    expect(newest.locator("h3")).to_contain_text(BIRTH[lang])
    expect(newest).to_contain_text(demo.credentials["office"]["client_id"])
    counts = newest.locator("dd").nth(2).inner_text()
    assert "{" not in counts and "%(" not in counts, counts
    screenshot(page, f"portal-household-{lang}")
    assert page.errors == []
