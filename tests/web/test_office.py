"""The office's desks in Chromium, in Arabic, French and English: an officer signs in by name
(password + TOTP through the authorization endpoint), opens a citizen's rectification request
and accepts or refuses it, opens a review request (the household under a pseudonym, its
declaration and score) and decides it; the citizen then sees the outcome on the portal. Each
page is translated, right to left in Arabic and axe-core clean."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import LANGS, Citizens, WebDemo, new_page, screenshot, sign_in_officer
from tests.web.test_pages import _check

CITIZEN_FOR = {"ar": 0, "fr": 1, "en": 2}


@pytest.fixture(scope="module")
def officer(browser: Any, demo: WebDemo) -> Any:
    page = new_page(browser, demo, "fr", inject=True)
    sign_in_officer(page, demo)
    yield page
    page.context.close()


@pytest.fixture(scope="module")
def second(browser: Any, demo: WebDemo) -> Any:
    """The other officer, who may approve what the first asked for (signed in once: a TOTP
    code is good once per step)."""
    page = new_page(browser, demo, "fr", inject=True)
    sign_in_officer(page, demo, "second_officer")
    yield page
    page.context.close()


@pytest.mark.parametrize("lang", LANGS)
def test_an_officer_decides_a_rectification_request_and_the_citizen_sees_it(
    citizens: Citizens, officer: Any, demo: WebDemo, lang: str
) -> None:
    n = CITIZEN_FOR[lang]
    idcs = demo.citizen(n)["idcs"]
    citizen = citizens.page(n, lang, "/portal/rectification")
    citizen.fill("#f-phone", "+212600000111")
    citizen.fill("#statement", "My number changed.")
    citizen.click("form[action='/portal/rectification'] button")
    expect(citizen.locator("[role=status]")).to_be_visible()

    officer.goto(f"{demo.url}/office/language?to={lang}&next=/office/rectifications")
    assert _check(officer, lang, "/office/rectifications") == []
    # The queue runs oldest first: the request just made is the citizen's last (the portal's
    # own test may have left an earlier one).
    entry = officer.locator(".request", has_text=idcs).last
    entry.locator("h2 a").click()
    expect(officer.locator("dl.proposed")).to_contain_text("+212600000111")
    assert _check(officer, lang, "/office/rectifications/{id}") == []
    screenshot(officer, f"office-rectification-{lang}")
    if lang == "fr":
        officer.fill("#reason", "Le numéro n'est pas au nom de la personne.")
        officer.click("form.refuse button")
    else:
        officer.click("form.accept button")
    expect(officer.locator("[role=status]")).to_be_visible()
    expected = "refused" if lang == "fr" else "accepted"
    expect(officer.locator(f".status-{expected}")).to_be_visible()

    citizen.goto(f"{demo.url}/portal/rectification")
    expect(citizen.locator(f".request .status-{expected}").first).to_be_visible()
    if lang == "fr":
        expect(citizen.locator(".request").first).to_contain_text("au nom de la personne")


@pytest.mark.parametrize("lang", LANGS)
def test_an_officer_decides_a_review_and_the_citizen_sees_the_outcome(
    citizens: Citizens, officer: Any, demo: WebDemo, lang: str
) -> None:
    n = CITIZEN_FOR[lang]
    citizen = citizens.page(n, lang, "/portal/score")
    if not citizen.locator("form[action='/portal/score/review']").count():
        pytest.skip("this demo citizen's household is not scored")
    citizen.click("form[action='/portal/score/review'] button")
    expect(citizen.locator("[role=status]")).to_be_visible()

    officer.goto(f"{demo.url}/office/language?to={lang}&next=/office/reviews")
    assert _check(officer, lang, "/office/reviews") == []
    outcome = {"ar": "confirm", "fr": "override", "en": "correct"}[lang]
    # The queue shows households by pseudonym only: decide every pending one, oldest first.
    for _ in range(10):
        officer.goto(f"{demo.url}/office/reviews")
        if not officer.locator(".review h2 a").count():
            break
        officer.locator(".review h2 a").first.click()
        expect(officer.locator("dl.declaration")).to_be_visible()
        assert _check(officer, lang, "/office/reviews/{id}") == []
        screenshot(officer, f"office-review-{lang}")
        officer.check(f"#outcome-{outcome}")
        if outcome == "override":
            officer.check("#eligible-yes")
        if outcome == "correct":
            officer.fill("#housing\\.rooms", "9")
        officer.fill("#reason", "Reviewed by a person.")
        officer.click("form[action$='/decision'] button[type=submit]")
        expect(officer.locator("[role=status]")).to_be_visible()

    citizen.goto(f"{demo.url}/portal/score")
    expect(citizen.locator(".review").first).to_contain_text("Reviewed by a person.")


@pytest.mark.parametrize("lang", LANGS)
def test_an_erasure_needs_a_second_officer(
    officer: Any, second: Any, demo: WebDemo, lang: str
) -> None:
    # The demo citizens serve the other tests: the second officer refuses here; an approval
    # and its carry-out are tested through the API (tests/gateway/test_erasure.py).
    idcs = demo.citizen(CITIZEN_FOR[lang])["idcs"]
    officer.goto(f"{demo.url}/office/language?to={lang}&next=/office/erasures")
    assert _check(officer, lang, "/office/erasures") == []
    officer.fill("#idcs", idcs)
    officer.select_option("#ground", "court_order")
    officer.fill("#reference", "TPI-Fes-2026-0042")
    officer.click("form.ask-erasure button")
    expect(officer.locator("[role=status]")).to_be_visible()
    expect(officer.locator(".status-awaiting_approval")).to_be_visible()
    erasure_url = officer.url.split("?")[0]
    officer.click("form.approve button")
    expect(officer.locator(".four-eyes")).to_be_visible()
    assert _check(officer, lang, "/office/erasures/{id} (four eyes)") == []
    screenshot(officer, f"office-erasure-four-eyes-{lang}")

    second.goto(f"{demo.url}/office/language?to={lang}&next={erasure_url.split(demo.url)[1]}")
    second.fill("#reason", "The enrolment is not a duplicate.")
    second.click("form.refuse button")
    expect(second.locator("[role=status]")).to_be_visible()
    expect(second.locator(".status-refused")).to_be_visible()
